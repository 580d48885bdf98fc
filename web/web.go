// Package web holds natter's default page templates and static files (CSS, JavaScript, icons),
// embedded in the binary so that natter runs from one file. The server looks in the operator's
// --template-dir and --static-dir directories first; see docs/web.md.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static templates
var files embed.FS

// Static holds the default static files, served at /static/.
var Static fs.FS = mustSub("static")

// Templates holds the default page templates, in html/template syntax: layout.html wraps every
// page, and signin.html, rooms.html, room.html and error.html define its blocks.
var Templates fs.FS = mustSub("templates")

func mustSub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // dir is one of the directories embedded above
	}
	return f
}
