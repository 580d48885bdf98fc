package e2e

import (
	"testing"

	"natter/app"
	"natter/internal/redistest"
)

// Two natter nodes on one Redis, one person on each, as a load balancer would place them: they
// see each other online, one's messages reach the other, and one on SSE and one on long-polling
// show the same log in the same order.
func TestTwoNodesInTheBrowser(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, url)
	onRedis := func(c *app.Config) { c.Redis, c.RedisPrefix = url, prefix }
	node1, node2 := startNatter(t, onRedis), startNatter(t, onRedis)
	browser := newBrowser(t)
	ann := newPage(t, browser, "ann")
	ben := newPage(t, browser, "ben")

	ann.navigate(node1.url + "/rooms/lobby?transport=sse")
	ann.signIn(node1.url, "ann", "", "guest")
	ann.waitLive("sse")
	ben.navigate(node2.url + "/rooms/lobby?transport=poll")
	ben.signIn(node2.url, "ben", "", "guest")
	ben.waitLive("poll")

	ann.waitJS("ben (on node 2) online", `!!document.querySelector('#online [data-user="ben"]')`)
	ben.waitJS("ann (on node 1) online", `!!document.querySelector('#online [data-user="ann"]')`)

	ann.say("hello from node 1")
	ben.waitMessage("ann", "hello from node 1")
	ben.say("and from node 2")
	ann.waitMessage("ben", "and from node 2")
	ann.say("one more")
	for _, p := range []*page{ann, ben} {
		p.waitSeqs(1, 3)
	}
}
