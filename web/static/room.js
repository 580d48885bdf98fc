// natter: the room page's client. It shows one room's log and keeps it live over WebSocket,
// falling back to Server-Sent Events and then to long-polling when a transport can't get
// through. After any disconnect it resumes from the last seq shown, so the list has no gap and no
// duplicate; messages typed while offline wait in an outbox and go out, with their client_id,
// once a transport is live again.
//
// Message text, names and titles only ever reach the page through textContent and created
// elements, never as HTML.
'use strict';

(() => {
  const root = document.querySelector('main.room[data-room]');
  if (!root || !window.natter) return;
  const { api, showError, signInPath, setUnread, setMuted } = window.natter;

  const ROOM = root.dataset.room;
  const ME = root.dataset.user;
  const GUEST = root.dataset.guest === 'true';
  // MODERATOR: created the room or is an admin: may delete any message, rename, ban.
  const MODERATOR = root.dataset.moderator === 'true';
  let banned = root.dataset.banned === 'true'; // a moderator banned this user from posting here
  let bans = new Set(); // for a moderator: who is banned here
  const FORCED = root.dataset.transport || '';
  const MAX_BODY = Number(root.dataset.maxBody) || 4096;
  const ROOM_API = '/api/rooms/' + encodeURIComponent(ROOM);
  const WITH = root.dataset.with || ''; // in a direct conversation: the other account
  // CAN_PIN: pins messages to the room (its moderators; either account of a conversation).
  const CAN_PIN = !GUEST && (MODERATOR || !!WITH);
  const ORDER = FORCED ? [FORCED] : ['ws', 'sse', 'poll'];
  const NAMES = { ws: 'WebSocket', sse: 'SSE', poll: 'long-poll' };

  // knob reads a tunable, in seconds: the query parameter name (?stale_after=3, for tests and for
  // looking into a problem) or else main.room's data- attribute (data-stale-after, for an
  // operator's template overlay). It answers milliseconds, def when unset or not a number >= min.
  function knob(name, def, min) {
    const attr = root.dataset[name.replace(/_(.)/g, (_, c) => c.toUpperCase())];
    const v = Number(new URLSearchParams(location.search).get(name) ?? attr ?? NaN);
    return (Number.isFinite(v) && v >= min ? v : def) * 1000;
  }

  // Timing, in milliseconds unless named otherwise.
  const PAGE_SIZE = 100;
  const WS_OPEN_TIMEOUT = 10000;
  // A transport that opened but has not gone live by then (a buffering proxy can hold an event
  // stream open and deliver nothing) counts as failed.
  const LIVE_TIMEOUT = 15000;
  // A live stream that has delivered nothing for STALE_AFTER is dead, even if the browser never
  // says so (a NAT or proxy that dropped the connection silently). The server writes to a quiet
  // SSE stream every 20 s (a ping event) and pings a quiet WebSocket, but a page can't see
  // WebSocket pings, so it asks for a pong itself once the socket has been quiet for WS_PING_AFTER.
  const STALE_AFTER = knob('stale_after', 60, 1);
  const WS_PING_AFTER = STALE_AFTER * 5 / 12; // 25 s of 60
  const WATCH_EVERY = Math.min(5000, STALE_AFTER / 6);
  // On a fallback, the better transports are tried again, beside the one in use, once it has been
  // live for UPGRADE_AFTER; each round that fails (and each fall back soon after going up) doubles
  // the wait, up to UPGRADE_MAX_FACTOR times.
  const UPGRADE_AFTER = knob('upgrade_after', 300, 0.5);
  const UPGRADE_MAX_FACTOR = 6;
  const POLL_WAIT_SECONDS = 30;
  // A long-polling page asks who is online, and reads the room (its title, whether the reader is
  // banned: long-polls carry no such notices), every PRESENCE_EVERY.
  const PRESENCE_EVERY = knob('presence_every', 10, 1);
  // A transport that fails before it goes live, or dies within SHORT_LIVED of going live, while
  // the server answers plain requests, earns a strike; STRIKES strikes in a row and the client
  // falls back to the next transport. A server that is down earns none: that is a reconnect.
  const SHORT_LIVED = 5000;
  const STRIKES = 2;
  const BACKOFF_BASE = 500;
  const BACKOFF_MAX = 15000;
  // A send the server refuses for now (rate_limited, unavailable) holds the whole outbox: it is
  // retried after the server's hint, or after SEND_RETRY_BASE doubling to SEND_RETRY_MAX.
  const SEND_RETRY_BASE = 1000;
  const SEND_RETRY_MAX = 15000;
  // A send with no answer (ack, error, or the message in the log) after SEND_TIMEOUT holds the
  // outbox for good: the connection counts as broken, and the page reconnects, resumes, and sends
  // the outbox again with the same client_ids, which the server stores once. An unanswered send
  // is a strike against the transport (see STRIKES), so a path that keeps losing sends (a proxy
  // that passes a WebSocket's pings but not its frames) ends in a fallback, not a reconnect
  // every SEND_TIMEOUT.
  const SEND_TIMEOUT = knob('send_timeout', 10, 0.5);
  const GROUP_WITHIN = 5 * 60 * 1000;

  const $ = (id) => document.getElementById(id);
  const els = {
    conn: $('conn'),
    connText: $('conn').querySelector('.conn-text'),
    scroller: $('scroller'),
    list: $('messages'),
    pending: $('pending'),
    older: $('older'),
    logStart: $('log-start'),
    jump: $('jump'),
    online: $('online'),
    onlineCount: $('online-count'),
    onlineError: $('online-error'),
    form: $('composer'),
    body: $('body'),
    composerError: $('composer-error'),
    hint: $('composer-hint'),
    notify: $('notify'),
    typing: $('typing'),
    search: $('search'),
    searchQ: $('search-q'),
    searchPanel: $('search-panel'),
    searchStatus: $('search-status'),
    searchResults: $('search-results'),
    searchMore: $('search-more'),
    searchClose: $('search-close'),
    replying: $('replying'),
    replyCancel: $('reply-cancel'),
  };

  // The part of the room's log on the page: every seq from lowest to highest, each shown once.
  const log = {
    epoch: null,
    lowest: 0, // 0: nothing shown
    highest: 0, // the resume point: everything up to here is shown
    shown: new Map(), // seq -> element
    early: new Map(), // seq -> message that came before the gap below it was filled
    loadingOlder: false,
  };
  // Messages typed here and not yet seen in the log, oldest first.
  const outbox = [];
  let online = new Set();

  // Connection state.
  let transportIndex = 0;
  let current = null; // the transport in use, or null between attempts
  let generation = 0; // bumped whenever a transport is abandoned, so its late callbacks are ignored
  let attempt = 0; // failed attempts since the last live connection
  let strikes = 0;
  let retryTimer = null;
  let everLive = false;
  // Going back up: while a fallback is in use, a trial of a better transport runs beside it now
  // and then, and takes over once it is live.
  let trial = null; // {kind, index, t}: the transport being tried, not yet live
  let upgradeTimer = null;
  let upgradeFails = 0; // failed rounds of trials, and falls back soon after going up
  let upgradedAt = 0; // when a trial last took over
  // Sending: the outbox goes out strictly in order, one message at a time, and a temporary
  // refusal holds all of it until holdTimer fires.
  let holdTimer = null;
  let refusals = 0; // temporary refusals in a row

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const backoff = (n) => Math.min(BACKOFF_MAX, BACKOFF_BASE * 2 ** Math.max(0, n - 1)) * (0.5 + Math.random() / 2);
  const parse = (s) => { try { return JSON.parse(s); } catch { return null; } };
  const goSignIn = () => location.assign(signInPath());

  function newClientID() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return 'c-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // ---- Connection indicator ----

  function setConn(kind, state) {
    els.conn.dataset.transport = kind;
    els.conn.dataset.state = state;
    const name = NAMES[kind];
    els.connText.textContent =
      state === 'live' ? `Live · ${name}` :
      state === 'connecting' ? `Connecting · ${name}…` :
      state === 'reconnecting' ? `Reconnecting · ${name}…` :
      'Offline';
    els.conn.title = state === 'live' ? `Connected over ${name}` : `Not connected (${state})`;
    updatePendingStatus();
  }

  // ---- Rendering ----

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const dayTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function formatTime(d) {
    const now = new Date();
    return d.toDateString() === now.toDateString() ? timeFormat.format(d) : dayTimeFormat.format(d);
  }

  // appendText adds text to el, making http and https links clickable through created <a>
  // elements; everything else stays a text node.
  const LINK = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  const LINK_END = '.,;:!?)]}';
  // trimEnd drops the characters in chars from the end of s. A loop, not /[...]+$/, which tries
  // every start and takes quadratic time on a long run of dots.
  function trimEnd(s, chars) {
    let n = s.length;
    while (n > 0 && chars.includes(s[n - 1])) n--;
    return s.slice(0, n);
  }
  function appendText(el, text) {
    let last = 0;
    for (const match of text.matchAll(LINK)) {
      // Trailing punctuation usually ends the sentence, not the link.
      const raw = trimEnd(match[0], LINK_END);
      let url = null;
      try { url = new URL(raw); } catch { url = null; }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) continue;
      el.append(text.slice(last, match.index));
      const a = document.createElement('a');
      a.href = url.href;
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      a.textContent = raw;
      el.append(a);
      last = match.index + raw.length;
    }
    el.append(text.slice(last));
  }

  // appendFormatted adds a message body to el with the light formatting chat users expect. A
  // line ``` (or ```lang, the word ignored) up to the next line ``` is a code block: <pre><code>
  // with the lines between exactly as typed. On the other lines `code` is <code>, **bold**
  // <strong>, *italic* and _italic_ <em>, and links are links (appendText). The rules are
  // CommonMark's, cut down: a run of n backticks opens code that the next run of exactly n
  // closes; * and _ count only where they hug text (its "flanking" rules), so 2 * 3 * 4 stays as
  // it is, and _ never inside a word (snake_case_name); nothing reaches past the end of its line,
  // nothing counts inside code or a link, and whatever does not pair up stays literal text.
  // Created elements and text nodes only, never HTML; the time taken is linear in the text's
  // length. The body as typed is kept for editing (bodyText).
  const bodySource = new WeakMap(); // a .body element -> the text it shows, as typed
  const bodyText = (el) => bodySource.get(el) ?? el.textContent;

  // A fence is ``` alone on its line, perhaps followed by a language word.
  function isFence(line) {
    const t = line.trim();
    return t.startsWith('```') && /^[\w+#.-]*$/.test(t.slice(3).trimStart());
  }

  function appendFormatted(el, text) {
    bodySource.set(el, text);
    const lines = text.split('\n');
    let run = []; // lines since the last code block
    const flush = () => {
      run.forEach((line, i) => {
        if (i) el.append('\n');
        appendInline(el, line);
      });
      run = [];
    };
    // A fence opens a block only if a line ``` follows. close is where the search for that line
    // goes on: it never goes back, and once it has failed no later fence can open a block.
    let close = 0;
    for (let i = 0; i < lines.length; i++) {
      if (close >= 0 && isFence(lines[i])) {
        close = Math.max(close, i + 1);
        while (close < lines.length && lines[close].trim() !== '```') close++;
        if (close < lines.length) {
          flush();
          const pre = document.createElement('pre');
          const code = document.createElement('code');
          code.textContent = lines.slice(i + 1, close).join('\n');
          pre.append(code);
          el.append(pre);
          i = close++;
          continue;
        }
        close = -1;
      }
      run.push(lines[i]);
    }
    flush();
  }

  // pairs says whether the runs o and d may open and close one emphasis: CommonMark's "rule of
  // 3", so that *a**b**c* nests rather than pairing * with **.
  const pairs = (o, d) => !((o.open && o.close) || (d.open && d.close)) ||
    (o.len + d.len) % 3 !== 0 || (o.len % 3 === 0 && d.len % 3 === 0);
  const SPECIAL = /[`*_]/g;

  // appendInline adds one line outside code blocks to el: code spans, emphasis and links.
  function appendInline(el, s) {
    if (!/[`*_]/.test(s)) {
      appendText(el, s);
      return;
    }
    // Where the links are: no marker inside one counts (a path's a_b_c), one right after does.
    const links = [];
    for (const m of s.matchAll(LINK)) links.push([m.index, m.index + trimEnd(m[0], LINK_END + '*_').length]);
    // The runs of backticks (where each starts), and by length, each with the first not passed.
    const ticks = [];
    const sameLength = new Map();
    for (const m of s.matchAll(/`+/g)) {
      if (!sameLength.has(m[0].length)) sameLength.set(m[0].length, { runs: [], next: 0 });
      sameLength.get(m[0].length).runs.push(ticks.length);
      ticks.push(m.index);
    }

    // 1. Cut the line into text (strings), code ({ code }) and runs of * or _ that may open or
    // close emphasis ({ ch, len, n: how many are not used yet, open, close, opens, closes }).
    const items = [];
    const text = (t) => {
      if (typeof items[items.length - 1] === 'string') items[items.length - 1] += t;
      else items.push(t);
    };
    let link = 0;
    let tick = 0;
    for (let i = 0; i < s.length;) {
      while (link < links.length && links[link][0] < i) link++;
      if (link < links.length && links[link][0] === i) {
        text(s.slice(i, links[link][1]));
        i = links[link][1];
        continue;
      }
      const c = s[i];
      let j = i;
      if (c === '`') {
        while (s[j] === '`') j++;
        while (ticks[tick] < i) tick++;
        const same = sameLength.get(j - i);
        while (same.next < same.runs.length && same.runs[same.next] <= tick) same.next++;
        if (same.next === same.runs.length) { // nothing closes it
          text(s.slice(i, j));
          i = j;
          continue;
        }
        const end = ticks[same.runs[same.next++]];
        let code = s.slice(j, end);
        if (code[0] === ' ' && code[code.length - 1] === ' ' && /[^ ]/.test(code)) code = code.slice(1, -1);
        items.push({ code });
        i = end + (j - i);
      } else if (c === '*' || c === '_') {
        while (s[j] === c) j++;
        const spaceBefore = i === 0 || /\s/.test(s[i - 1]);
        const spaceAfter = j === s.length || /\s/.test(s[j]);
        const punctBefore = /[\p{P}\p{S}]$/u.test(s.slice(Math.max(0, i - 2), i));
        const punctAfter = /^[\p{P}\p{S}]/u.test(s.slice(j, j + 2));
        const left = !spaceAfter && (!punctAfter || spaceBefore || punctBefore);
        const right = !spaceBefore && (!punctBefore || spaceAfter || punctAfter);
        const open = c === '*' ? left : left && (!right || punctBefore);
        const close = c === '*' ? right : right && (!left || punctAfter);
        const len = j - i;
        // * is italic, ** bold, *** both; _ is italic only (__init__ stays as it is).
        if ((open || close) && len <= (c === '*' ? 3 : 1)) items.push({ ch: c, len, n: len, open, close, opens: [], closes: [] });
        else text(s.slice(i, j));
        i = j;
      } else {
        SPECIAL.lastIndex = i;
        const m = SPECIAL.exec(s);
        let end = m ? m.index : s.length;
        if (link < links.length && links[link][0] < end) end = links[link][0];
        text(s.slice(i, end));
        i = end;
      }
    }

    // 2. Pair the runs (CommonMark's "process emphasis"): each closer takes the nearest opener of
    // its character it pairs with, and the openers between them can no longer open. floor keeps,
    // for each kind of closer, below which openers a search has already failed.
    const openers = { '*': [], '_': [] }; // indexes into items, innermost last
    const floor = new Map();
    items.forEach((d, x) => {
      if (!d.ch) return;
      if (d.close) {
        const stack = openers[d.ch];
        const kind = d.ch + d.open + (d.len % 3);
        while (d.n) {
          const bottom = floor.get(kind) ?? -1;
          let at = stack.length - 1;
          while (at >= 0 && stack[at] > bottom && !pairs(items[stack[at]], d)) at--;
          if (at < 0 || stack[at] <= bottom) {
            floor.set(kind, x - 1);
            break;
          }
          const oi = stack[at];
          const o = items[oi];
          stack.length = at + 1;
          const other = openers[d.ch === '*' ? '_' : '*'];
          while (other.length && other[other.length - 1] > oi) other.pop();
          const tag = o.n >= 2 && d.n >= 2 ? 'strong' : 'em';
          o.opens.push(tag); // innermost first
          d.closes.push(tag);
          o.n -= tag === 'strong' ? 2 : 1;
          d.n -= tag === 'strong' ? 2 : 1;
          if (!o.n) stack.pop();
        }
      }
      if (d.n && d.open) openers[d.ch].push(x);
    });

    // 3. Build the elements. A run closes first (with its left end), then what is left of it is
    // text, then it opens (with its right end). Text between is one appendText, for the links.
    const nest = [el]; // the element being filled, innermost last
    let literal = '';
    const put = () => {
      if (literal) appendText(nest[nest.length - 1], literal);
      literal = '';
    };
    for (const it of items) {
      if (typeof it === 'string') {
        literal += it;
      } else if (it.code !== undefined) {
        put();
        const code = document.createElement('code');
        code.textContent = it.code;
        nest[nest.length - 1].append(code);
      } else {
        if (it.closes.length) put();
        for (let k = 0; k < it.closes.length; k++) nest.pop();
        literal += it.ch.repeat(it.n);
        if (it.opens.length) put();
        for (let k = it.opens.length - 1; k >= 0; k--) {
          const e = document.createElement(it.opens[k]);
          nest[nest.length - 1].append(e);
          nest.push(e);
        }
      }
    }
    put();
  }

  // A message of someone else that names the reader (@name, in any case) is marked: li.mention.
  const MENTION = new RegExp(`(^|[^a-z0-9_.@-])@${ME.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![a-z0-9_-]|\\.[a-z0-9_-])`, 'i');

  function messageElement(author, body, ts) {
    const li = document.createElement('li');
    li.className = 'msg';
    if (author === ME) li.classList.add('mine');
    else if (MENTION.test(body)) li.classList.add('mention');
    li.dataset.author = author;
    const meta = document.createElement('div');
    meta.className = 'meta';
    const who = document.createElement('span');
    who.className = 'author';
    who.textContent = author;
    meta.append(who);
    if (ts) {
      const d = new Date(ts);
      if (!Number.isNaN(d.getTime())) {
        const time = document.createElement('time');
        time.dateTime = ts;
        time.title = d.toLocaleString();
        time.textContent = formatTime(d);
        meta.append(time);
        li.dataset.ts = String(d.getTime());
        li.dataset.day = dayKey(d);
      }
    }
    const p = document.createElement('div');
    p.className = 'body';
    appendFormatted(p, body);
    li.append(meta, p);
    return li;
  }

  function renderMessage(m) {
    // A deleted message comes without its words (deleted: true): shown as deleted, whether or
    // not the page has its deletion yet.
    if (m.deleted && !deleted.has(m.seq)) deleted.set(m.seq, '');
    const li = messageElement(m.author, m.body, m.ts);
    li.dataset.seq = String(m.seq);
    li.id = 'm' + m.seq;
    // The time is the message's link: /rooms/ops#m42 opens the room at it.
    const time = li.querySelector('.meta time');
    if (time) {
      const a = document.createElement('a');
      a.className = 'permalink';
      a.href = '#m' + m.seq;
      time.replaceWith(a);
      a.append(time);
    }
    if (m.reply_to) {
      addQuote(li, m.reply_to);
      // An answer to one of the reader's messages calls the reader as a mention does.
      if (m.author !== ME && log.shown.get(m.reply_to)?.dataset.author === ME) li.classList.add('mention');
    }
    const tools = document.createElement('span');
    tools.className = 'msg-tools';
    // toolBox makes one of the message's tools: a box of its class with one button.
    const toolBox = (kind, label, aria, onClick) => {
      const box = document.createElement('span');
      box.className = `msg-actions ${kind}-actions`;
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      if (aria) b.setAttribute('aria-label', aria);
      b.addEventListener('click', () => onClick(b));
      box.append(b);
      return box;
    };
    li.append(tools);
    if (m.author === ME && !GUEST) addOwnActions(li, true); // guests change nothing (the server says why)
    else if (MODERATOR) addOwnActions(li, false); // Delete only
    // Reply last: shown on a touch screen only once the message is tapped or focused, it must not
    // move Edit and Delete under the finger.
    tools.append(toolBox('reply', 'Reply', '', () => startReply(li)));
    tools.append(toolBox('react', 'React', 'Add a reaction', () => togglePalette(li)));
    if (CAN_PIN) tools.append(toolBox('pin', 'Pin', '', () => togglePin(li)));
    // Link: the address of the message (copied where the browser lets a page write the
    // clipboard), and the page shows it as a link from elsewhere would.
    tools.append(toolBox('link', 'Link', 'Link to this message', (b) => linkTo(m.seq, b)));
    applyChanges(li);
    return li;
  }

  async function linkTo(seq, button) {
    location.hash = 'm' + seq;
    try {
      await navigator.clipboard.writeText(location.href);
      button.textContent = 'Copied';
      setTimeout(() => { button.textContent = 'Link'; }, 2000);
    } catch { /* no clipboard here (a plain http:// address): the address bar has the link */ }
  }

  // ---- Replies ----
  //
  // A message may answer an earlier one (reply_to): it shows that message's author and first
  // words above its own, as a button that shows the message in the log (loading history back
  // to it). The quote follows the message's edits and deletion, and fills in once history
  // brings a message that was not on the page. Reply on a message starts one in the composer.
  const QUOTE_CHARS = 120;
  let replyTo = null; // the li being answered in the composer, or null

  function addQuote(li, seq) {
    const q = document.createElement('button');
    q.type = 'button';
    q.className = 'quote';
    q.dataset.replyTo = String(seq);
    const who = document.createElement('span');
    who.className = 'quote-author';
    const text = document.createElement('span');
    text.className = 'quote-text';
    q.append(who, text);
    q.addEventListener('click', () => jumpTo(seq));
    li.querySelector('.meta').after(q);
    fillQuote(q);
  }

  // quoteOf gives the author and first words of the message li, as a quote shows them.
  function quoteOf(li) {
    if (li.classList.contains('deleted')) return { author: li.dataset.author, text: 'This message was deleted.' };
    const t = bodyText(li.querySelector('.body')).replace(/\s+/g, ' ').trim();
    return { author: li.dataset.author, text: [...t].length > QUOTE_CHARS ? [...t].slice(0, QUOTE_CHARS).join('') + '…' : t };
  }

  function fillQuote(q) {
    const target = log.shown.get(Number(q.dataset.replyTo));
    const { author, text } = target ? quoteOf(target) : { author: '', text: 'an earlier message' };
    q.querySelector('.quote-author').textContent = author;
    q.querySelector('.quote-text').textContent = text;
    q.classList.toggle('unresolved', !target);
    q.setAttribute('aria-label', target ? `In reply to ${author}: ${text}. Show that message.` : 'In reply to an earlier message. Show it.');
  }

  // refreshQuotes fills in the quotes of seq (every unresolved one without seq).
  function refreshQuotes(seq) {
    const sel = seq ? `.quote[data-reply-to="${seq}"]` : '.quote.unresolved';
    document.querySelectorAll(`#messages ${sel}, #pending ${sel}`).forEach(fillQuote);
  }

  function startReply(li) {
    const atBottom = nearBottom();
    replyTo = li;
    if (tapped) tapped = void tapped.classList.remove('tapped');
    const { author, text } = quoteOf(li);
    els.replying.querySelector('.replying-author').textContent = author;
    els.replying.querySelector('.replying-text').textContent = text;
    els.replying.hidden = false;
    if (atBottom) scrollToBottom(); // the bar takes room from the log
    els.body.focus();
  }

  function cancelReply() {
    replyTo = null;
    els.replying.hidden = true;
  }

  // Without hover (a touch screen), a message's tools (Reply, React, Edit, Delete) show on the
  // message last tapped (app.css).
  let tapped = null;
  els.list.addEventListener('click', (ev) => {
    const li = ev.target.closest('li.msg[data-seq]');
    if (!li || ev.target.closest('button, a, textarea, pre') || !matchMedia('(hover: none)').matches) return;
    if (tapped && tapped !== li) tapped.classList.remove('tapped');
    tapped = li.classList.toggle('tapped') ? li : null;
  });

  // ---- Edits and deletions ----
  //
  // An edit or a deletion is an entry of the log of its own (kind, target), never shown as a
  // message: it changes the message it targets, wherever that is on the page or when it gets
  // there (history loads backwards, so a change is always seen no later than its target). The
  // latest edit gives the text; a deletion is for good.
  const isChange = (m) => m.kind === 'edit' || m.kind === 'delete' || m.kind === 'react' || m.kind === 'unreact' || m.kind === 'pin' || m.kind === 'unpin';
  const edits = new Map(); // target seq -> the latest edit
  const deleted = new Map(); // target seq -> who deleted it
  // target seq -> Map of "emoji\nauthor" -> {seq, on}: the latest react or unreact of each author
  // and emoji (history arrives out of order, so the seq decides).
  const reactions = new Map();

  // recordChange takes in a change and updates its target if it is on the page.
  function recordChange(m) {
    if (m.kind === 'pin' || m.kind === 'unpin' || (m.kind === 'delete' && pinned.has(m.target))) schedulePins();
    if (m.kind === 'pin' || m.kind === 'unpin') return; // the list is the server's (loadPins)
    if (m.deleted) {
      // An edit a deletion erased (the server keeps no words of a deleted message): its target
      // is deleted, by someone the deletion's own entry tells.
      if (!deleted.has(m.target)) deleted.set(m.target, '');
    } else if (m.kind === 'delete') deleted.set(m.target, m.author);
    else if (m.kind === 'react' || m.kind === 'unreact') {
      if (!reactions.has(m.target)) reactions.set(m.target, new Map());
      const r = reactions.get(m.target);
      const key = m.body + '\n' + m.author;
      if ((r.get(key)?.seq ?? 0) < m.seq) r.set(key, { seq: m.seq, on: m.kind === 'react' });
    } else if (!edits.has(m.target) || edits.get(m.target).seq < m.seq) edits.set(m.target, m);
    applyChanges(log.shown.get(m.target));
  }

  // ---- Reactions ----
  //
  // Under a message, one button per emoji with how many put it there (pressed when one of them
  // is the reader); a click puts the reader's on or takes it off. React (in the message's
  // buttons) offers a few common ones.
  const PALETTE = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🙏'];

  function renderReactions(li, seq) {
    const counts = new Map(); // emoji -> authors, in the order first put on
    for (const [key, v] of reactions.get(seq) || []) {
      if (!v.on) continue;
      const [emoji, author] = key.split('\n');
      if (!counts.has(emoji)) counts.set(emoji, []);
      counts.get(emoji).push(author);
    }
    let row = li.querySelector(':scope > .reactions');
    if (!counts.size) {
      row?.remove();
      return;
    }
    if (!row) {
      row = document.createElement('div');
      row.className = 'reactions';
      li.querySelector('.body').after(row);
    }
    row.replaceChildren(...[...counts].map(([emoji, authors]) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'reaction';
      b.dataset.emoji = emoji;
      const mine = authors.includes(ME);
      b.setAttribute('aria-pressed', String(mine));
      b.title = authors.join(', ');
      b.setAttribute('aria-label', `${emoji} ${authors.length}: ${authors.join(', ')}${mine ? '. Take yours off' : '. Add yours'}`);
      const count = document.createElement('span');
      count.className = 'count';
      count.textContent = String(authors.length);
      b.append(emoji, count);
      b.addEventListener('click', () => react(li, emoji, !mine));
      return b;
    }));
  }

  async function react(li, emoji, on) {
    try {
      await sendChange(li, { kind: on ? 'react' : 'unreact', body: emoji });
    } catch (err) {
      showError(els.composerError, err.message);
    }
  }

  function togglePalette(li) {
    const open = li.querySelector('.react-palette');
    document.querySelectorAll('#messages .react-palette').forEach((p) => p.remove());
    if (open) return;
    const box = document.createElement('div');
    box.className = 'react-palette';
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', 'Add a reaction');
    for (const emoji of PALETTE) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = emoji;
      b.addEventListener('click', () => {
        box.remove();
        react(li, emoji, true);
      });
      box.append(b);
    }
    box.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { box.remove(); li.querySelector('.react-actions button')?.focus(); } });
    (li.querySelector(':scope > .reactions') || li.querySelector('.body')).after(box);
    box.querySelector('button').focus();
  }

  function applyChanges(li) {
    if (!li || !li.dataset.seq) return;
    const seq = Number(li.dataset.seq);
    const body = li.querySelector('.body');
    if (deleted.has(seq)) {
      // '' when the page has the erased message but not yet its deletion (a page boundary).
      const by = deleted.get(seq);
      body.textContent = !by || by === li.dataset.author ? 'This message was deleted.' : `This message was deleted by ${by}.`;
      if (li.classList.contains('deleted')) return;
      li.classList.add('deleted');
      li.classList.remove('mention');
      li.querySelector('.own-actions')?.remove();
      li.querySelector('.reply-actions')?.remove();
      li.querySelector('.react-actions')?.remove();
      li.querySelector(':scope > .reactions')?.remove();
      li.querySelector('.react-palette')?.remove();
      li.querySelector('.pin-actions')?.remove();
      li.querySelector('.pin-mark')?.remove();
      li.querySelector('.edited')?.remove();
      li.querySelector(':scope > .versions')?.remove();
      if (replyTo === li) cancelReply();
      refreshQuotes(seq);
      return;
    }
    renderReactions(li, seq);
    showPinned(li);
    const e = edits.get(seq);
    if (!e || li.dataset.edit === String(e.seq)) return;
    li.dataset.edit = String(e.seq);
    body.replaceChildren();
    appendFormatted(body, e.body);
    refreshQuotes(seq);
    if (li.dataset.author !== ME) li.classList.toggle('mention', MENTION.test(e.body));
    if (!li.querySelector('.edited')) {
      const mark = document.createElement('button');
      mark.type = 'button';
      mark.className = 'edited';
      mark.textContent = '(edited)';
      mark.title = 'Show the earlier versions';
      mark.setAttribute('aria-expanded', 'false');
      mark.addEventListener('click', () => toggleHistory(li, mark));
      li.querySelector('.meta').append(mark);
    }
    li.querySelector(':scope > .versions')?.remove(); // out of date: opened again, it is read anew
    li.querySelector('.edited')?.setAttribute('aria-expanded', 'false');
  }

  // toggleHistory shows under an edited message its versions, oldest first (the message as sent,
  // then each edit, with when), read from the server; a second click hides them.
  async function toggleHistory(li, mark) {
    const open = li.querySelector(':scope > .versions');
    if (open) {
      open.remove();
      mark.setAttribute('aria-expanded', 'false');
      return;
    }
    try {
      const { data } = await api('GET', `${ROOM_API}/messages/${li.dataset.seq}/edits`);
      const list = document.createElement('ol');
      list.className = 'versions';
      list.setAttribute('aria-label', 'Versions of this message, oldest first');
      for (const v of [data.message, ...data.edits]) {
        const item = document.createElement('li');
        const when = document.createElement('time');
        when.dateTime = v.ts;
        when.textContent = new Date(v.ts).toLocaleString();
        const text = document.createElement('span');
        text.className = 'version-text';
        appendFormatted(text, v.body);
        item.append(when, ' ', text);
        list.append(item);
      }
      li.querySelector(':scope > .versions')?.remove();
      li.append(list);
      mark.setAttribute('aria-expanded', 'true');
    } catch (err) {
      if (err.status === 401) goSignIn();
    }
  }

  // sendChange appends an edit or a deletion, then shows it at once (the transport brings it
  // too; the log takes each seq once).
  async function sendChange(li, change) {
    const target = Number(li.dataset.seq);
    const { data } = await api('POST', `${ROOM_API}/messages`, { ...change, target, client_id: newClientID() });
    deliver(data.message);
  }

  // addOwnActions gives li Edit (for its author) and Delete.
  function addOwnActions(li, edit) {
    const box = document.createElement('span');
    box.className = 'msg-actions own-actions';
    const button = (label, fn) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.addEventListener('click', fn);
      box.append(b);
      return b;
    };
    if (edit) button('Edit', () => startEdit(li)).className = 'edit';
    const del = button('Delete', async () => {
      if (del.dataset.confirm !== 'yes') { // a second click deletes
        del.dataset.confirm = 'yes';
        del.textContent = 'Delete?';
        setTimeout(() => { del.dataset.confirm = ''; del.textContent = 'Delete'; }, 4000);
        return;
      }
      try {
        await sendChange(li, { kind: 'delete' });
      } catch (err) {
        showError(els.composerError, err.message);
      }
    });
    (li.querySelector('.msg-tools') || li).append(box);
  }

  function startEdit(li) {
    if (li.querySelector('.edit-box')) return;
    const body = li.querySelector('.body');
    const seq = Number(li.dataset.seq);
    const form = document.createElement('form');
    form.className = 'edit-box';
    const box = document.createElement('textarea');
    box.name = 'edit';
    box.rows = 2;
    box.value = edits.has(seq) ? edits.get(seq).body : bodyText(body);
    box.setAttribute('aria-label', 'Edit your message');
    const save = document.createElement('button');
    save.type = 'submit';
    save.className = 'btn btn-primary btn-small';
    save.textContent = 'Save';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'btn btn-small';
    cancel.textContent = 'Cancel';
    const err = document.createElement('p');
    err.className = 'error';
    err.hidden = true;
    form.append(box, save, cancel, err);
    body.hidden = true;
    body.after(form);
    const close = () => { form.remove(); body.hidden = false; };
    cancel.addEventListener('click', close);
    box.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') close();
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const text = box.value.replace(/\s+$/, '');
      if (!text.trim()) { showError(err, 'An edit needs some text; use Delete to take the message back.'); return; }
      if (text === bodyText(body)) { close(); return; }
      save.disabled = true;
      try {
        await sendChange(li, { kind: 'edit', body: text });
        close();
      } catch (e) {
        showError(err, e.message);
        save.disabled = false;
      }
    });
    box.focus();
    form.scrollIntoView({ block: 'nearest' });
  }

  // ---- Day separators ----
  //
  // A separator (li.day, role=separator, no data-seq) stands right before the first message shown
  // of each calendar day, in the browser's time zone: "Today", "Yesterday" or the date. daySep
  // puts it there or takes it away for one message, so it is called for every message added and
  // for the message just after a join (the old first message when history is prepended).

  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  const pad = (n) => String(n).padStart(2, '0');
  function dayKey(d) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }
  function dayLabel(key) {
    const now = new Date();
    if (key === dayKey(now)) return 'Today';
    const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (key === dayKey(yesterday)) return 'Yesterday';
    const [y, m, d] = key.split('-').map(Number);
    return dayFormat.format(new Date(y, m - 1, d));
  }
  function labelSep(sep) {
    const label = dayLabel(sep.dataset.day);
    sep.setAttribute('aria-label', label);
    sep.firstElementChild.textContent = label;
  }
  const isSep = (el) => !!el && el.classList.contains('day');
  let labelledOn = dayKey(new Date()); // "Today" and "Yesterday" move at midnight

  function daySep(li) {
    if (!li || !li.dataset.day) return;
    let sep = li.previousElementSibling;
    if (!isSep(sep)) sep = null;
    const prev = sep ? sep.previousElementSibling : li.previousElementSibling;
    if (prev && prev.dataset.day === li.dataset.day) {
      if (sep) sep.remove();
      return;
    }
    if (!sep) {
      sep = document.createElement('li');
      sep.className = 'day';
      sep.setAttribute('role', 'separator');
      const time = document.createElement('time');
      time.dateTime = li.dataset.day;
      sep.append(time);
      li.before(sep);
    }
    sep.dataset.day = li.dataset.day;
    sep.firstElementChild.dateTime = li.dataset.day;
    labelSep(sep);
    const today = dayKey(new Date());
    if (today !== labelledOn) {
      labelledOn = today;
      els.list.querySelectorAll(':scope > .day').forEach(labelSep);
    }
  }

  // regroup hides the name and time of a message that follows one by the same author shortly
  // before on the same day (they stay readable to screen readers).
  function regroup(li) {
    if (!li) return;
    const prev = li.previousElementSibling;
    const cont = !!prev && !isSep(prev) && prev.dataset.author === li.dataset.author &&
      prev.dataset.day === li.dataset.day &&
      Number(li.dataset.ts) - Number(prev.dataset.ts) < GROUP_WITHIN;
    li.classList.toggle('cont', cont);
  }

  const nearBottom = () => {
    const s = els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  };
  function scrollToBottom() {
    els.scroller.scrollTop = els.scroller.scrollHeight;
    els.jump.hidden = true;
  }

  // ---- The log ----

  function clearLog() {
    log.epoch = null;
    log.lowest = 0;
    log.highest = 0;
    log.shown.clear();
    edits.clear();
    deleted.clear();
    log.early.clear();
    els.list.replaceChildren();
  }

  // loadLatest shows the newest page of the room; live messages follow from its last seq.
  async function loadLatest() {
    const { data } = await api('GET', `${ROOM_API}/messages?limit=${PAGE_SIZE}`);
    clearLog();
    log.epoch = data.epoch;
    const frag = document.createDocumentFragment();
    const lis = [];
    for (const m of data.messages) if (isChange(m)) recordChange(m);
    for (const m of data.messages) {
      if (log.shown.has(m.seq)) continue;
      if (isChange(m)) {
        log.shown.set(m.seq, null);
        continue;
      }
      const li = renderMessage(m);
      frag.append(li);
      lis.push(li);
      log.shown.set(m.seq, li);
    }
    els.list.append(frag);
    lis.forEach((li) => { daySep(li); regroup(li); });
    if (data.messages.length) {
      log.lowest = data.messages[0].seq;
      log.highest = data.messages[data.messages.length - 1].seq;
    }
    for (const m of data.messages) settle(m);
    updateHistoryControls();
    showUnreadFrom(firstLoad && log.epoch === root.dataset.epoch ? INITIAL_READ : null);
    const first = firstLoad;
    firstLoad = false;
    scrollToBottom();
    noteSeen();
    fillViewport();
    if (first && linkedSeq()) jumpTo(linkedSeq());
  }

  // linkedSeq is the message the address names (#m42), or 0.
  function linkedSeq() {
    const m = /^#m(\d+)$/.exec(location.hash);
    return m ? Number(m[1]) : 0;
  }
  window.addEventListener('hashchange', () => {
    if (linkedSeq()) jumpTo(linkedSeq());
  });

  // deliver takes a message from any transport. Duplicates (a resume overlaps what was shown)
  // are dropped; a message past a gap waits until the gap is fetched.
  function deliver(m) {
    if (!m || m.room !== ROOM || typeof m.seq !== 'number') return;
    if (m.seq <= log.highest) {
      settle(m);
      return;
    }
    if (m.seq > log.highest + 1) {
      log.early.set(m.seq, m);
      fillGap();
      return;
    }
    appendMessage(m);
    for (let next = log.early.get(log.highest + 1); next; next = log.early.get(log.highest + 1)) {
      log.early.delete(next.seq);
      appendMessage(next);
    }
  }

  // logged takes m, the next seq, into the log, shown as li (null: a change, shown in its target).
  function logged(m, li) {
    log.shown.set(m.seq, li);
    log.highest = m.seq;
    if (!log.lowest) {
      log.lowest = m.seq;
      updateHistoryControls();
    }
    settle(m);
  }

  function appendMessage(m) {
    if (isChange(m)) {
      logged(m, null);
      recordChange(m);
      noteSeen();
      return;
    }
    const stick = nearBottom();
    const li = renderMessage(m);
    els.list.append(li);
    daySep(li);
    regroup(li);
    logged(m, li);
    if (stick) scrollToBottom();
    else els.jump.hidden = false;
    arrived(li, m);
    if (typers.delete(m.author)) renderTyping();
  }

  let filling = false;
  async function fillGap() {
    if (filling) return;
    filling = true;
    try {
      while (log.early.size) {
        const { data } = await api('GET', `${ROOM_API}/messages?after=${log.highest}&limit=1000`);
        if (data.epoch !== log.epoch) {
          epochChanged();
          return;
        }
        if (!data.messages.length) break;
        for (const m of data.messages) deliver(m);
        for (const seq of log.early.keys()) if (seq <= log.highest) log.early.delete(seq);
      }
    } catch (err) {
      if (err.status === 401) { goSignIn(); return; }
      setTimeout(fillGap, 2000);
    } finally {
      filling = false;
    }
  }

  // ---- History ----

  function updateHistoryControls() {
    const more = log.lowest > 1;
    els.older.hidden = !more;
    els.logStart.hidden = more;
  }

  async function loadOlder(limit = PAGE_SIZE) {
    if (log.loadingOlder || log.lowest <= 1) return;
    log.loadingOlder = true;
    els.older.disabled = true;
    els.older.textContent = 'Loading older messages…';
    try {
      const { data } = await api('GET', `${ROOM_API}/messages?before=${log.lowest}&limit=${limit}`);
      if (data.epoch !== log.epoch) {
        epochChanged();
        return;
      }
      const msgs = data.messages.filter((m) => m.seq < log.lowest && !log.shown.has(m.seq));
      if (!msgs.length) {
        log.lowest = 1;
        return;
      }
      const frag = document.createDocumentFragment();
      for (const m of msgs) if (isChange(m)) recordChange(m);
      const lis = [];
      for (const m of msgs) {
        if (isChange(m)) {
          log.shown.set(m.seq, null);
          continue;
        }
        const li = renderMessage(m);
        log.shown.set(m.seq, li);
        frag.append(li);
        lis.push(li);
      }
      const oldFirst = els.list.querySelector(':scope > [data-seq]');
      const s = els.scroller;
      const fromBottom = s.scrollHeight - s.scrollTop;
      els.list.setAttribute('aria-busy', 'true');
      els.list.prepend(frag);
      lis.forEach((li) => { daySep(li); regroup(li); });
      daySep(oldFirst); // the join: the day above may go on here
      regroup(oldFirst);
      // Keep what the reader was looking at in place.
      s.scrollTop = s.scrollHeight - fromBottom;
      els.list.removeAttribute('aria-busy');
      log.lowest = msgs[0].seq;
      refreshQuotes(); // replies to these can show them now
    } catch (err) {
      if (err.status === 401) goSignIn();
    } finally {
      log.loadingOlder = false;
      els.older.disabled = false;
      els.older.textContent = 'Load older messages';
      updateHistoryControls();
    }
    fillViewport();
  }

  // fillViewport loads history until the list can scroll, since only scrolling asks for more.
  function fillViewport() {
    const s = els.scroller;
    if (log.lowest > 1 && s.scrollHeight <= s.clientHeight + 10) loadOlder();
  }

  els.scroller.addEventListener('scroll', () => {
    if (els.scroller.scrollTop < 300) loadOlder();
    if (nearBottom()) els.jump.hidden = true;
  }, { passive: true });
  els.older.addEventListener('click', () => loadOlder());
  els.jump.addEventListener('click', () => {
    scrollToBottom();
    els.body.focus();
  });

  // ---- What is new: the read mark, the "New" rule, the title ----
  //
  // An account's read mark (PUT /api/rooms/R/read) follows the newest message it has seen: shown
  // while the page is visible and scrolled to the bottom. It goes out at most every MARK_EVERY,
  // and at once when the page is hidden or left; the room list counts each room's messages past
  // it, on every device of the account. Guests have no marks. The page opens with a "New" rule
  // above the first message past the mark, and moves it to the first message that arrives while
  // the page is hidden, whose title meanwhile counts the messages of others: "(3) Lobby".
  const MARK_EVERY = 5000; // a busy room of 10,000 readers: 2,000 marks a second
  const INITIAL_READ = root.dataset.readSeq === undefined ? null : Number(root.dataset.readSeq);
  let TITLE = document.title; // the page's own title (a rename changes it)
  let firstLoad = true;
  let markEpoch = root.dataset.epoch || null; // the epoch markSent and lastSeen are in
  let markSent = INITIAL_READ ?? -1; // the mark the server has (or has been sent); -1: none
  let lastSeen = 0; // the newest message seen
  let markTimer = null;
  let unseen = 0; // messages of others that came while the page was hidden
  let unreadMark = null; // the message holding the "New" rule

  function showUnreadFrom(readSeq) {
    if (unreadMark) {
      unreadMark.querySelector('.unread-mark')?.remove();
      unreadMark = null;
    }
    if (readSeq === null || readSeq >= log.highest || !log.highest) return;
    let li = null;
    for (let seq = Math.max(readSeq + 1, log.lowest); !li && seq <= log.highest; seq++) li = log.shown.get(seq);
    if (!li) return;
    const mark = document.createElement('div');
    mark.className = 'unread-mark';
    mark.setAttribute('role', 'separator');
    mark.setAttribute('aria-label', 'New messages');
    mark.textContent = 'New';
    li.prepend(mark);
    unreadMark = li;
  }

  // noteSeen takes in what the reader can see now, and schedules the mark.
  function noteSeen() {
    if (log.epoch !== markEpoch) { // a new log (a restore): its seqs start over
      markEpoch = log.epoch;
      markSent = -1;
      lastSeen = 0;
    }
    if (document.visibilityState !== 'visible' || !nearBottom() || !log.epoch) return;
    lastSeen = Math.max(lastSeen, log.highest);
    if (GUEST || lastSeen <= markSent || markTimer) return;
    markTimer = setTimeout(() => sendMark(false), MARK_EVERY);
  }

  function sendMark(leaving) {
    clearTimeout(markTimer);
    markTimer = null;
    if (GUEST || !markEpoch || lastSeen <= markSent) return; // an empty room is marked at 0
    const seq = lastSeen;
    const before = markSent;
    markSent = seq;
    // While live on a WebSocket the mark goes as a frame; a page being left uses a request that
    // outlives it (keepalive), and SSE and long-polling pages always do.
    if (!leaving && current && current.mark && current.mark(seq, markEpoch)) return;
    fetch(ROOM_API + '/read', {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ seq, epoch: markEpoch }),
      keepalive: leaving, // outlives the page
    }).then((res) => {
      // A refusal for now (the server is busy or restarting) is tried again with the next
      // message seen; one for good (another epoch, a message not there) is not.
      if ((res.status >= 500 || res.status === 429) && markSent === seq) markSent = before;
    }, () => {
      if (markSent === seq) markSent = before;
    });
  }

  // arrived takes a message just appended to the log.
  function arrived(li, m) {
    if (document.visibilityState === 'visible') {
      noteSeen();
      return;
    }
    if (m.author === ME) return;
    // In a direct conversation every message is for the reader, unless it is muted: then, as in
    // any muted room, only a mention notifies or counts in the page's title.
    const mention = li.classList.contains('mention');
    if (mention || (WITH && !muted)) notifyMention(m);
    if (!unseen) showUnreadFrom(m.seq - 1);
    if (muted && !mention) return;
    unseen++;
    document.title = `(${unseen}) ${TITLE}`;
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      unseen = 0;
      document.title = TITLE;
      noteSeen();
    } else {
      sendMark(true);
    }
  });
  window.addEventListener('pagehide', () => sendMark(true));
  els.scroller.addEventListener('scroll', () => {
    if (nearBottom()) noteSeen();
  }, { passive: true });

  // ---- Notifications ----
  //
  // "Notify me" (shown where the browser has notifications) asks for permission once and then,
  // while this page is in the background, shows a desktop notification for each message that
  // mentions the reader (in a direct conversation: each message of the other); clicking it brings
  // the page back. The choice is kept in this browser.
  const NOTIFY_KEY = 'natter.notify';
  const canNotify = 'Notification' in window;
  const notifyOn = () => canNotify && Notification.permission === 'granted' && localStorage.getItem(NOTIFY_KEY) === 'on';

  function showNotifyState() {
    els.notify.setAttribute('aria-pressed', String(notifyOn()));
    els.notify.textContent = notifyOn() ? 'Notifying' : 'Notify me';
  }

  // plainText is a body as the page shows it, without its formatting markers.
  function plainText(body) {
    const el = document.createElement('div');
    appendFormatted(el, body);
    return el.textContent;
  }

  // ---- Muting ----
  //
  // "Mute" in the room's head (accounts only) keeps the room's new messages out of the counts
  // (room lists show them quietly, the page's title not at all) and its notifications to
  // mentions; the server keeps the choice for the account, on every device.
  let muted = root.dataset.muted === 'true';
  const muteEl = $('mute');
  if (muteEl) {
    muteEl.addEventListener('click', async () => {
      const on = !muted;
      muteEl.disabled = true;
      try {
        await api(on ? 'PUT' : 'DELETE', `${ROOM_API}/mute`);
        muted = on;
        muteEl.setAttribute('aria-pressed', String(on));
        muteEl.textContent = on ? 'Muted' : 'Mute';
        const li = document.querySelector(`#rooms li[data-room="${CSS.escape(ROOM)}"]`);
        if (li) setMuted(li, on);
      } catch (err) {
        if (err.status === 401) goSignIn();
      } finally {
        muteEl.disabled = false;
      }
    });
  }

  // ---- The reader's other direct conversations ----
  //
  // While live on a WebSocket the page also follows the reader's other direct conversations
  // listed beside the room (up to WATCH_MAX, live from when it connects or the list's refresh
  // adds one): a message of the other
  // account there adds to that conversation's count of new messages in the list and, with
  // notifications on, notifies at once, whether this page is in front or not (a click opens the
  // conversation).
  const WATCH_MAX = 50;

  function watchedRooms() {
    return [...document.querySelectorAll('#rooms li[data-with]')]
      .map((li) => li.dataset.room).filter((r) => r !== ROOM).slice(0, WATCH_MAX);
  }

  function elsewhere(m) {
    if (!m || m.author === ME || m.kind) return;
    const li = document.querySelector(`#rooms li[data-room="${CSS.escape(m.room)}"]`);
    if (!li || !li.dataset.with) return;
    setUnread(li, (Number(li.querySelector('.room-unread')?.dataset.unread) || 0) + 1);
    if (!notifyOn() || li.classList.contains('muted')) return;
    try {
      const note = new Notification(m.author, { body: plainText(m.body).slice(0, 200), tag: `${m.room}:${m.seq}` });
      note.onclick = () => { window.focus(); location.assign('/rooms/' + encodeURIComponent(m.room)); note.close(); };
    } catch { /* some browsers only notify from a service worker */ }
  }

  function notifyMention(m) {
    if (!notifyOn()) return;
    try {
      const n = new Notification(WITH ? m.author : `${m.author} in #${ROOM}`, { body: plainText(m.body).slice(0, 200), tag: `${ROOM}:${m.seq}` });
      n.onclick = () => { window.focus(); n.close(); };
    } catch { /* some browsers only notify from a service worker */ }
  }

  if (els.notify && canNotify && Notification.permission !== 'denied') {
    els.notify.hidden = false;
    showNotifyState();
    els.notify.addEventListener('click', async () => {
      if (notifyOn()) {
        localStorage.setItem(NOTIFY_KEY, 'off');
      } else {
        const p = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
        localStorage.setItem(NOTIFY_KEY, p === 'granted' ? 'on' : 'off');
        if (p === 'denied') els.notify.hidden = true;
      }
      showNotifyState();
    });
  }

  // ---- Typing ----
  //
  // While the reader types, the page tells the room every TYPING_EVERY (over the WebSocket, or a
  // POST beside SSE and long-polling); the server passes on one every 2 s at most. Others' notices
  // (WebSocket and SSE only: long-polling gets none) show under the message box for TYPING_SHOW,
  // or until that person's message arrives.
  const TYPING_EVERY = 3000;
  const TYPING_SHOW = 6000;
  const typers = new Map(); // user -> until
  let typedAt = 0;
  let typingTimer = null;

  // postTyping is the notice beside SSE and long-polling; a failure is of no consequence.
  function postTyping() {
    api('POST', `${ROOM_API}/typing`).catch(() => {});
  }

  function typingEvent(f) {
    if (!f || f.room !== ROOM || !f.user || f.user === ME) return;
    typers.set(f.user, Date.now() + TYPING_SHOW);
    renderTyping();
  }

  function renderTyping() {
    const now = Date.now();
    for (const [user, until] of typers) if (until <= now) typers.delete(user);
    const names = [...typers.keys()].sort();
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length === 3) text = `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
    else if (names.length > 3) text = `${names.length} people are typing…`;
    els.typing.textContent = text;
    els.typing.hidden = !text;
    els.hint.hidden = !!text;
    clearTimeout(typingTimer);
    if (names.length) typingTimer = setTimeout(renderTyping, Math.min(...typers.values()) - now + 10);
  }

  els.body.addEventListener('input', () => {
    const now = Date.now();
    if (banned || !els.body.value.trim() || now - typedAt < TYPING_EVERY || !current || !current.live) return;
    typedAt = now;
    current.typing();
  });

  // ---- Presence ----

  // An account sees each other person online as a button that opens the direct conversation
  // with them (a guest has none: the server says so under the list).
  function renderOnline() {
    const names = [...online].sort();
    els.online.replaceChildren(...names.map((name) => {
      const li = document.createElement('li');
      li.dataset.user = name;
      if (name === ME) li.classList.add('me');
      if (GUEST || name === ME || name === WITH) {
        li.textContent = name;
        return li;
      }
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'open-direct';
      b.textContent = name;
      b.title = `Message ${name}`;
      b.addEventListener('click', () => openDirect(name));
      li.append(b);
      if (MODERATOR && !WITH) {
        // A moderator bans from here, or lifts the ban.
        const isBanned = bans.has(name);
        li.classList.toggle('banned', isBanned);
        const m = document.createElement('button');
        m.type = 'button';
        m.className = 'mod-action';
        m.textContent = isBanned ? 'unban' : 'ban';
        m.setAttribute('aria-label', isBanned ? `Let ${name} post here again` : `Ban ${name} from posting here`);
        m.addEventListener('click', () => setBan(name, !isBanned, els.onlineError));
        li.append(m);
      }
      return li;
    }));
    els.onlineCount.textContent = String(names.length);
  }

  async function openDirect(name) {
    showError(els.onlineError, '');
    try {
      const { data } = await api('POST', '/api/dms', { user: name });
      location.assign('/rooms/' + encodeURIComponent(data.room.name));
    } catch (err) {
      if (err.status === 401) { location.assign(signInPath()); return; }
      showError(els.onlineError, err.message);
    }
  }

  function setOnline(names, includeMe) {
    online = new Set(Array.isArray(names) ? names : []);
    // Long-poll readers hold no connection the server can count; this one is here all the same.
    if (includeMe) online.add(ME);
    renderOnline();
  }

  function presenceEvent(f) {
    if (!f || f.room !== ROOM) return;
    if (f.type === 'presence') setOnline(f.online, false);
    else if (f.type === 'join') { online.add(f.user); renderOnline(); }
    else if (f.type === 'leave') { online.delete(f.user); renderOnline(); }
  }

  // ---- Sending ----

  function pendingElement(item) {
    const li = messageElement(ME, item.body, null);
    if (item.replyTo) addQuote(li, item.replyTo);
    li.classList.add('pending');
    li.dataset.clientId = item.clientId;
    const status = document.createElement('span');
    status.className = 'status';
    li.querySelector('.meta').append(status);
    item.statusEl = status;
    return li;
  }

  function updatePendingStatus() {
    const live = !!(current && current.live);
    for (const item of outbox) {
      if (item.failed) continue;
      item.statusEl.textContent = item.seq ? 'sent' : !live ? 'waiting for connection…' :
        holdTimer ? 'waiting to retry…' : 'sending…';
    }
  }

  function queueMessage(body, reply) {
    const item = { clientId: newClientID(), body, replyTo: reply || 0, sentOn: null, seq: 0, failed: false };
    item.el = pendingElement(item);
    outbox.push(item);
    els.pending.append(item.el);
    scrollToBottom();
    updatePendingStatus();
    flushOutbox();
  }

  function flushOutbox() {
    if (current && current.live) current.flush();
  }

  function dropItem(item) {
    const i = outbox.indexOf(item);
    if (i >= 0) outbox.splice(i, 1);
    item.el.remove();
  }

  // settle retires the pending copy of a message once the real one is on the page. That answers
  // its send too, even if the ack is lost: the next message can go.
  function settle(m) {
    if (m.author !== ME || !m.client_id) return;
    const item = outbox.find((i) => i.clientId === m.client_id);
    if (!item) return;
    dropItem(item);
    flushOutbox();
  }

  // acked records that the server stored a message; it stays pending until the log shows it.
  // The next message can go.
  function acked(clientID, seq) {
    refusals = 0;
    const item = outbox.find((i) => i.clientId === clientID);
    if (item) {
      item.seq = seq;
      if (log.shown.has(seq)) dropItem(item);
      else updatePendingStatus();
    }
    flushOutbox();
  }

  // holdSends stops all sending for a while after a temporary refusal, so that the refused
  // message is retried before any typed after it: hintMs is the server's word on when to retry
  // (0 when it gave none).
  function holdSends(hintMs) {
    refusals++;
    const wait = hintMs > 0 ? Math.min(SEND_RETRY_MAX * 2, Math.max(250, hintMs + 100)) :
      Math.min(SEND_RETRY_MAX, SEND_RETRY_BASE * 2 ** (refusals - 1));
    clearTimeout(holdTimer);
    holdTimer = setTimeout(() => {
      holdTimer = null;
      updatePendingStatus();
      flushOutbox();
    }, wait);
    updatePendingStatus();
  }

  // retryHint reads when to retry from a WebSocket error frame: its retry_after_ms, or the
  // "retry in 950ms" the rate limiter's message ends with.
  function retryHint(f) {
    if (typeof f.retry_after_ms === 'number') return f.retry_after_ms;
    const m = /\bretry in (\d+(?:\.\d+)?)(ms|s)\b/.exec(f.message || '');
    return m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : 0;
  }

  // sendRefused handles a refusal: a temporary one holds the outbox and is retried in order, any
  // other is shown on the message, and the messages after it go on.
  function sendRefused(item, code, message, hintMs) {
    item.sentOn = null;
    if (code === 'rate_limited' || code === 'unavailable' || code === 'internal') {
      holdSends(hintMs);
      return;
    }
    if (code === 'forbidden' && !banned) recheckBanned();
    item.failed = true;
    item.el.classList.add('failed');
    item.statusEl.textContent = 'not sent: ' + message;
    const actions = document.createElement('span');
    actions.className = 'msg-actions';
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.textContent = 'Retry';
    retry.addEventListener('click', () => {
      item.failed = false;
      item.el.classList.remove('failed');
      actions.remove();
      updatePendingStatus();
      flushOutbox();
    });
    const discard = document.createElement('button');
    discard.type = 'button';
    discard.textContent = 'Discard';
    discard.addEventListener('click', () => dropItem(item));
    actions.append(retry, discard);
    item.statusEl.after(actions);
    flushOutbox();
  }

  // httpSender POSTs the outbox in order, one at a time, for the transports that only receive.
  // A POST with no answer within SEND_TIMEOUT is abandoned and stuck() ends the transport.
  function httpSender(stuck) {
    let busy = false;
    let stopped = false;
    let timer = null;
    const later = (ms) => { clearTimeout(timer); timer = setTimeout(flush, ms); };
    async function flush() {
      if (busy || stopped) return;
      busy = true;
      try {
        for (;;) {
          const item = outbox.find((i) => !i.seq && !i.failed);
          if (!item || stopped || holdTimer) return;
          const ctrl = new AbortController();
          const stall = setTimeout(() => { stuck(); ctrl.abort(); }, SEND_TIMEOUT);
          try {
            const { data } = await api('POST', `${ROOM_API}/messages`, { body: item.body, client_id: item.clientId, ...(item.replyTo && { reply_to: item.replyTo }) },
              { signal: ctrl.signal });
            acked(item.clientId, data.message.seq);
          } catch (err) {
            if (stopped || err.name === 'AbortError') return;
            if (err.status === 401) { goSignIn(); return; }
            if (err.status === 429) {
              holdSends((err.retryAfter || 0) * 1000);
              return;
            }
            if (err.status === 0 || err.status >= 500) {
              // Maybe stored, maybe not: the same client_id again is safe, and still goes first.
              // A network that is down is the transport's to notice; its successor sends anew.
              later(2000);
              return;
            }
            sendRefused(item, err.code, err.message);
          } finally {
            clearTimeout(stall);
          }
        }
      } finally {
        busy = false;
      }
    }
    return { flush, stop() { stopped = true; clearTimeout(timer); } };
  }

  // ---- Transports ----
  //
  // Each takes hooks {live(), down(info), epoch(e) -> bool} and returns {live, flush(), typing(),
  // close()}.
  // down is called once, when the transport fails; close is the page abandoning it.

  function wsTransport(h) {
    let ws = null;
    let live = false;
    let liveSince = 0;
    let done = false;
    let lastHeard = Date.now();
    let heartbeat = null;
    let sendTimer = null;
    const openTimer = setTimeout(() => finish({}), WS_OPEN_TIMEOUT);
    const send = (f) => { try { ws.send(JSON.stringify(f)); } catch { /* onclose follows */ } };

    function finish(info) {
      if (done) return;
      done = true;
      teardown();
      h.down({ live, liveSince, slow: info.code === 4008, unanswered: !!info.unanswered });
    }
    // The conversations followed change with the list beside the room (its refresh adds a
    // conversation that came back or began, and drops one closed elsewhere).
    let watched = new Set();
    const listWatch = new MutationObserver(() => {
      const now = new Set(watchedRooms());
      for (const room of now) if (!watched.has(room)) send({ type: 'subscribe', room });
      for (const room of watched) if (!now.has(room)) send({ type: 'unsubscribe', room });
      watched = now;
    });
    function teardown() {
      listWatch.disconnect();
      clearTimeout(openTimer);
      clearInterval(heartbeat);
      clearTimeout(sendTimer);
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try { ws.close(1000); } catch { /* already closing */ }
      }
    }

    try {
      ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    } catch {
      setTimeout(() => finish({}), 0);
      return { get live() { return false; }, flush() {}, typing() {}, close() { done = true; teardown(); } };
    }
    ws.onopen = () => {
      clearTimeout(openTimer);
      lastHeard = Date.now();
      send({ type: 'subscribe', room: ROOM, after: log.highest });
      watched = new Set(watchedRooms());
      for (const room of watched) send({ type: 'subscribe', room }); // live from now
      const list = $('rooms');
      if (list) listWatch.observe(list, { childList: true });
      heartbeat = setInterval(() => {
        const quiet = Date.now() - lastHeard;
        if (quiet > STALE_AFTER) finish({});
        else if (quiet > WS_PING_AFTER) send({ type: 'ping' }); // the server answers pong
      }, WATCH_EVERY);
    };
    ws.onmessage = (ev) => {
      lastHeard = Date.now();
      const f = parse(ev.data);
      if (!f) return;
      switch (f.type) {
        case 'subscribed':
          if (f.room !== ROOM || !h.epoch(f.epoch)) return;
          live = true;
          liveSince = Date.now();
          h.live();
          break;
        case 'message':
          if (f.message && f.message.room !== ROOM) elsewhere(f.message);
          else deliver(f.message);
          break;
        case 'presence':
        case 'join':
        case 'leave':
          presenceEvent(f);
          break;
        case 'typing':
          typingEvent(f);
          break;
        case 'room':
          roomRenamed(f);
          break;
        case 'ban':
          banEvent(f);
          break;
        case 'ack':
          acked(f.client_id, f.seq);
          break;
        case 'error': {
          const item = f.ref && outbox.find((i) => i.clientId === f.ref);
          if (item) sendRefused(item, f.code, f.message, retryHint(f));
          else if (f.ref === ROOM && f.code === 'not_found') fatal('This room no longer exists.');
          else if (f.ref === ROOM) finish({});
          break;
        }
      }
    };
    ws.onerror = () => {}; // onclose follows with the code
    ws.onclose = (ev) => finish({ code: ev.code });
    return {
      get live() { return live && !done; },
      typing() { if (live && !done) send({ type: 'typing', room: ROOM }); },
      // A read mark on the open socket rather than a request of its own (no answer when stored).
      mark(seq, epoch) {
        if (!live || done) return false;
        send({ type: 'read', room: ROOM, epoch, seq });
        return true;
      },
      // One message in flight at a time: had a later one gone out behind it, a refused message
      // (rate_limited) could be stored after it on the retry. Each ack sends the next. A socket
      // that leaves a send unanswered for SEND_TIMEOUT is broken, though it may still pass pings.
      flush() {
        if (!live || done || holdTimer) return;
        const waiting = outbox.filter((i) => !i.seq && !i.failed);
        if (!waiting.length || waiting.some((i) => i.sentOn === ws)) return;
        const item = waiting[0];
        item.sentOn = ws;
        send({ type: 'send', room: ROOM, body: item.body, client_id: item.clientId, ...(item.replyTo && { reply_to: item.replyTo }) });
        clearTimeout(sendTimer);
        sendTimer = setTimeout(() => {
          if (item.sentOn === ws && !item.seq && outbox.includes(item)) finish({ unanswered: true });
        }, SEND_TIMEOUT);
      },
      close() {
        done = true;
        teardown();
      },
    };
  }

  function sseTransport(h) {
    let live = false;
    let liveSince = 0;
    let done = false;
    let lastHeard = Date.now();
    const sender = httpSender(() => finish(true));
    const es = new EventSource(`${ROOM_API}/events?after=${log.highest}`);
    const stop = () => {
      done = true;
      clearInterval(watchdog);
      es.close();
      sender.stop();
    };
    const finish = (unanswered) => {
      if (done) return;
      stop();
      h.down({ live, liveSince, unanswered: unanswered === true });
    };
    // A stream can die without an error (a proxy or NAT forgot it): the server sends a ping event
    // after 20 s of quiet, so one that delivered nothing at all for STALE_AFTER is gone.
    const watchdog = setInterval(() => {
      if (Date.now() - lastHeard > STALE_AFTER) finish();
    }, WATCH_EVERY);
    const on = (type, fn) => es.addEventListener(type, (ev) => {
      lastHeard = Date.now();
      if (!done) fn(ev);
    });
    on('open', () => {});
    on('ping', () => {});
    on('subscribed', (ev) => {
      const f = parse(ev.data);
      if (!f || !h.epoch(f.epoch)) return;
      live = true;
      liveSince = Date.now();
      h.live();
    });
    on('message', (ev) => deliver(parse(ev.data)));
    for (const type of ['presence', 'join', 'leave']) {
      on(type, (ev) => presenceEvent(parse(ev.data)));
    }
    on('typing', (ev) => typingEvent(parse(ev.data)));
    on('room', (ev) => roomRenamed(parse(ev.data)));
    on('ban', (ev) => banEvent(parse(ev.data)));
    // EventSource would reconnect by itself, but from its own idea of the position and never
    // to another transport: the page takes over instead.
    es.onerror = finish;
    return {
      get live() { return live && !done; },
      flush: () => { if (live && !done) sender.flush(); },
      typing: postTyping,
      close: stop,
    };
  }

  function pollTransport(h) {
    let live = false;
    let liveSince = 0;
    let done = false;
    let ctrl = null;
    let presenceTimer = null;
    const sender = httpSender(() => finish(true));
    const stop = () => {
      done = true;
      clearInterval(presenceTimer);
      sender.stop();
      if (ctrl) ctrl.abort();
    };
    const finish = (unanswered, refused) => {
      if (done) return;
      stop();
      h.down({ live, liveSince, unanswered: unanswered === true, refused });
    };
    async function refreshPresence() {
      try {
        const [{ data }, { data: one }] = await Promise.all([api('GET', `${ROOM_API}/presence`), api('GET', ROOM_API)]);
        if (done) return;
        setOnline(data.online, true);
        roomRenamed({ room: ROOM, title: one.room.title, topic: one.room.topic || '' });
        if (!!one.room.banned !== banned) setBanned(!!one.room.banned, one.room.ban_until, one.room.ban_reason);
        if (bansEl) loadBans();
      } catch { /* the next poll notices a real problem */ }
    }
    (async () => {
      let wait = 0; // the first poll answers at once, so the indicator goes live at once
      while (!done) {
        ctrl = new AbortController();
        const timer = setTimeout(() => ctrl.abort(), (wait + 20) * 1000);
        const started = Date.now();
        let data;
        try {
          ({ data } = await api('GET', `${ROOM_API}/messages?after=${log.highest}&limit=500&wait=${wait}`, undefined, { signal: ctrl.signal }));
        } catch (err) {
          clearTimeout(timer);
          // 429 and 503 say the server is up and refuses for now (a connection limit, shutting
          // down), and when to ask again.
          const refused = err.status === 429 || err.status === 503 ?
            { message: err.message, waitMs: (err.retryAfter || 0) * 1000 } : undefined;
          finish(false, refused);
          return;
        }
        clearTimeout(timer);
        if (done || !h.epoch(data.epoch)) return;
        if (!live) {
          live = true;
          liveSince = Date.now();
          h.live();
          refreshPresence();
          presenceTimer = setInterval(refreshPresence, PRESENCE_EVERY);
        }
        for (const m of data.messages) deliver(m);
        // A server that is shutting down answers at once: don't spin.
        if (wait && !data.messages.length && Date.now() - started < 1000) await sleep(1000);
        wait = POLL_WAIT_SECONDS;
      }
    })();
    return {
      get live() { return live && !done; },
      flush: () => { if (live && !done) sender.flush(); },
      typing: postTyping,
      close: stop,
    };
  }

  const TRANSPORTS = { ws: wsTransport, sse: sseTransport, poll: pollTransport };

  // ---- Connecting, falling back, resuming ----

  function abandon() {
    generation++;
    if (current) current.close();
    current = null;
  }

  // open starts a transport. The page's own (asTrial false) becomes current at once; a trial
  // runs beside current, delivering into the same deduplicated list, until it goes live and
  // takes over (adopt) or fails (trialFailed). Its hooks follow it from one role to the other.
  function open(kind, asTrial) {
    const slot = { kind, gen: asTrial ? 0 : ++generation, t: null };
    const mine = () => (slot.gen ? slot.gen === generation : trial === slot);
    const liveTimer = setTimeout(() => {
      if (!mine() || slot.t.live) return;
      if (!slot.gen) {
        trialFailed(slot);
        return;
      }
      abandon();
      lost(kind, { live: false });
    }, LIVE_TIMEOUT);
    slot.t = TRANSPORTS[kind]({
      live() {
        if (!mine()) return;
        clearTimeout(liveTimer);
        if (!slot.gen) adopt(slot);
        attempt = 0;
        everLive = true;
        setConn(kind, 'live');
        flushOutbox();
        if (!FORCED && transportIndex > 0) planUpgrade();
      },
      down(info) {
        if (!mine()) return;
        clearTimeout(liveTimer);
        if (!slot.gen) {
          trialFailed(slot);
          return;
        }
        generation++;
        current = null;
        lost(kind, info);
      },
      epoch(e) {
        if (!mine()) return false;
        if (log.epoch !== null && e !== log.epoch) {
          epochChanged();
          return false;
        }
        return true;
      },
    });
    return slot;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (current) abandon();
    const kind = ORDER[transportIndex];
    setConn(kind, everLive || attempt ? 'reconnecting' : 'connecting');
    current = open(kind, false).t;
  }

  // ---- Going back up ----
  //
  // A fallback is where the page ended up when a better transport failed, which may have been a
  // passing problem. Once the fallback has been live for a while, the better transports are
  // tried, best first, beside it; the first to go live takes over and resumes from the last seq
  // shown (it subscribed from there, and deliver drops what both bring), so nothing is lost or
  // shown twice and the indicator goes from live to live. A trial that fails changes nothing on
  // the page; the next round waits twice as long.

  function planUpgrade() {
    if (FORCED || trial || upgradeTimer || transportIndex === 0) return;
    upgradeTimer = setTimeout(tryUpgrade, UPGRADE_AFTER * Math.min(UPGRADE_MAX_FACTOR, 2 ** upgradeFails));
  }

  function tryUpgrade() {
    upgradeTimer = null;
    if (trial || transportIndex === 0) return;
    // Only from a working fallback: while it reconnects, an outage is the likelier story, and
    // its next live plans again.
    if (!current || !current.live) return;
    if (navigator.onLine === false) {
      planUpgrade();
      return;
    }
    runTrial(0);
  }

  function runTrial(index) {
    if (index >= transportIndex) { // none of the better ones got through this round
      upgradeFails++;
      planUpgrade();
      return;
    }
    trial = open(ORDER[index], true);
    trial.index = index;
  }

  function trialFailed(slot) {
    trial = null;
    slot.t.close();
    runTrial(slot.index + 1);
  }

  function adopt(slot) {
    trial = null;
    clearTimeout(retryTimer);
    retryTimer = null;
    abandon(); // the fallback: what it carried is shown, and the new transport resumes after it
    slot.gen = ++generation;
    current = slot.t;
    transportIndex = ORDER.indexOf(slot.kind);
    strikes = 0;
    upgradedAt = Date.now();
  }

  function stopTrial() {
    clearTimeout(upgradeTimer);
    upgradeTimer = null;
    if (trial) {
      const t = trial.t;
      trial = null;
      t.close();
    }
  }

  function schedule(ms) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, ms);
  }

  // probe tells a transport that can't get through from a server that is down, and from a room
  // that is gone (deleted, or shut to this user: an event stream or a poll of it then fails as
  // any lost connection does).
  async function probe() {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), 5000);
    try {
      const ready = await fetch('/readyz', { cache: 'no-store', signal: ctrl.signal });
      if (!ready.ok) return 'down';
      await api('GET', '/api/session', undefined, { signal: ctrl.signal });
      await api('GET', ROOM_API, undefined, { signal: ctrl.signal });
      return 'ok';
    } catch (err) {
      if (err.status === 404) return 'gone';
      return err.status === 401 ? 'unauthorized' : 'down';
    } finally {
      clearTimeout(timer);
    }
  }

  async function lost(kind, info) {
    setConn(kind, navigator.onLine === false ? 'offline' : 'reconnecting');
    if (info.refused) {
      // The server answered and refused: another transport would be refused alike, so this is
      // no strike against this one. Wait as long as it asked, and say why.
      els.conn.title = `Not connected: ${info.refused.message}`;
      attempt++;
      schedule(Math.max(backoff(attempt), info.refused.waitMs));
      return;
    }
    if (info.slow) {
      // Closed for falling behind: resume at once from the last seq shown.
      attempt = 0;
      schedule(100);
      return;
    }
    const gen = generation;
    const reach = await probe();
    if (gen !== generation) return; // something else reconnected meanwhile
    if (reach === 'unauthorized') {
      goSignIn();
      return;
    }
    if (reach === 'gone') {
      fatal('This room no longer exists.');
      return;
    }
    if (reach === 'ok') {
      const early = info.unanswered || !info.live || Date.now() - info.liveSince < SHORT_LIVED;
      strikes = early ? strikes + 1 : 0;
      if (strikes >= STRIKES && transportIndex < ORDER.length - 1) {
        transportIndex++;
        strikes = 0;
        // Down again soon after going up: wait longer before the next try.
        upgradeFails = Date.now() - upgradedAt < UPGRADE_AFTER ? upgradeFails + 1 : 0;
        attempt = 0;
        connect();
        return;
      }
    }
    attempt++;
    schedule(backoff(attempt));
  }

  // epochChanged: the room's log was reset, so every seq shown is meaningless. Start over.
  async function epochChanged() {
    stopTrial();
    abandon();
    clearLog();
    // What the old log acknowledged is gone with it: send it again, to the new log.
    for (const item of outbox) {
      item.seq = 0;
      item.sentOn = null;
    }
    await start();
  }

  function fatal(message) {
    stopTrial();
    abandon();
    clearTimeout(retryTimer);
    setConn(ORDER[transportIndex], 'offline');
    showError(els.composerError, message);
  }

  let starting = false;
  async function start() {
    if (starting) return;
    starting = true;
    try {
      for (;;) {
        try {
          await loadLatest();
          break;
        } catch (err) {
          if (err.status === 401) { goSignIn(); return; }
          if (err.status === 404) { fatal('This room no longer exists.'); return; }
          attempt++;
          setConn(ORDER[transportIndex], navigator.onLine === false ? 'offline' : 'reconnecting');
          await sleep(backoff(attempt));
        }
      }
      connect();
    } finally {
      starting = false;
    }
  }

  window.addEventListener('online', () => {
    if (retryTimer) connect();
  });
  window.addEventListener('offline', () => {
    if (!current || !current.live) setConn(ORDER[transportIndex], 'offline');
  });
  // Leaving the page: close at once, so others see us leave now rather than at a timeout.
  window.addEventListener('pagehide', () => {
    clearTimeout(retryTimer);
    stopTrial();
    abandon();
  });
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted) start(); // back from the back-forward cache
  });

  // ---- Search ----
  //
  // The box in the room's head searches the room's log on the server (GET .../search): every
  // word, in any case, and from:name; newest first, SEARCH_PAGE matches at a time, each request
  // reading at most 10,000 messages back ("Search older messages" goes on from there). The
  // results cover the log; opening one shows it in the log, loading history back to it.
  const SEARCH_PAGE = 20;
  const search = { q: '', before: 0, found: 0, scanned: 0, gen: 0 };

  function searchWords(q) {
    return q.split(/\s+/).filter((w) => w && !/^from:./.test(w)).map((w) => w.toLowerCase());
  }

  // appendMarked adds text to el with each occurrence of words in a <mark>.
  function appendMarked(el, text, words) {
    const lower = text.toLowerCase();
    if (!words.length || lower.length !== text.length) { // a case fold that changes lengths: no marks
      el.append(text);
      return;
    }
    let at = 0;
    for (;;) {
      let best = -1;
      let len = 0;
      for (const w of words) {
        const i = lower.indexOf(w, at);
        if (i >= 0 && (best < 0 || i < best || (i === best && w.length > len))) { best = i; len = w.length; }
      }
      if (best < 0) break;
      el.append(text.slice(at, best));
      const mark = document.createElement('mark');
      mark.textContent = text.slice(best, best + len);
      el.append(mark);
      at = best + len;
    }
    el.append(text.slice(at));
  }

  // markWords marks the words in every piece of text under el (a formatted body): a word split by
  // formatting (**dep**loy) is not marked.
  function markWords(el, words) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const texts = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) texts.push(n);
    for (const n of texts) {
      const frag = document.createDocumentFragment();
      appendMarked(frag, n.data, words);
      n.replaceWith(frag);
    }
  }

  function searchStatus() {
    const n = search.found;
    const what = `“${search.q}”`;
    const scanned = `${search.scanned.toLocaleString()} message${search.scanned === 1 ? '' : 's'}`;
    els.searchStatus.textContent = n
      ? `${n} result${n === 1 ? '' : 's'} for ${what}${search.before ? ` in the latest ${scanned}` : ''}`
      : `Nothing for ${what} in ${search.before ? 'the latest ' : ''}${scanned}`;
  }

  async function runSearch(more) {
    const gen = ++search.gen;
    if (!more) {
      search.q = els.searchQ.value.trim();
      search.before = 0;
      search.found = 0;
      search.scanned = 0;
      els.searchResults.replaceChildren();
      if (!search.q) {
        closeSearch();
        return;
      }
    }
    els.searchPanel.hidden = false;
    els.searchMore.hidden = true;
    els.searchStatus.textContent = 'Searching…';
    const params = new URLSearchParams({ q: search.q, limit: String(SEARCH_PAGE) });
    if (search.before) params.set('before', String(search.before));
    let data;
    try {
      ({ data } = await api('GET', `${ROOM_API}/search?${params}`));
    } catch (err) {
      if (gen !== search.gen) return;
      if (err.status === 401) { goSignIn(); return; }
      els.searchStatus.textContent = err.message || 'The search failed.';
      return;
    }
    if (gen !== search.gen) return;
    const words = searchWords(search.q);
    const latest = new Map(data.changes.map((c) => [c.target, c]));
    for (const m of data.messages) {
      const edit = edits.has(m.seq) ? edits.get(m.seq) : latest.get(m.seq);
      const li = messageElement(m.author, '', m.ts);
      li.classList.remove('mine', 'mention');
      const body = li.querySelector('.body');
      appendFormatted(body, edit ? edit.body : m.body);
      // A result is one link: links in its text become plain text.
      for (const link of body.querySelectorAll('a')) link.replaceWith(...link.childNodes);
      markWords(body, words);
      if (edit) {
        const mark = document.createElement('span');
        mark.className = 'edited';
        mark.textContent = '(edited)';
        li.querySelector('.meta').append(mark);
      }
      const a = document.createElement('a');
      a.className = 'result';
      a.href = '#m' + m.seq;
      a.dataset.seq = String(m.seq);
      a.append(...li.childNodes);
      li.append(a);
      els.searchResults.append(li);
    }
    search.found += data.messages.length;
    search.scanned += data.scanned;
    search.before = data.before || 0;
    els.searchMore.hidden = !search.before;
    searchStatus();
  }

  function closeSearch() {
    search.gen++;
    els.searchPanel.hidden = true;
    els.searchResults.replaceChildren();
  }

  // jumpTo shows message seq in the log, loading history back to it first.
  async function jumpTo(seq) {
    closeSearch();
    while (!log.shown.get(seq) && log.lowest > seq) {
      if (log.loadingOlder) { await sleep(50); continue; }
      const lowest = log.lowest;
      await loadOlder(Math.min(1000, lowest - seq + 20));
      if (log.lowest === lowest) break; // nothing came: the page is offline
    }
    const li = log.shown.get(seq);
    if (!li) return;
    li.scrollIntoView({ block: 'center' });
    li.classList.add('found');
    setTimeout(() => li.classList.remove('found'), 3000);
  }

  els.search.addEventListener('submit', (ev) => {
    ev.preventDefault();
    runSearch(false);
  });
  els.searchQ.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault(); // as the form would, on the key itself (an IME's Enter picks a word)
      runSearch(false);
      return;
    }
    if (ev.key === 'Escape') {
      els.searchQ.value = '';
      closeSearch();
    }
  });
  els.searchMore.addEventListener('click', () => runSearch(true));
  els.searchClose.addEventListener('click', () => {
    closeSearch();
    els.searchQ.focus();
  });
  els.searchResults.addEventListener('click', (ev) => {
    const a = ev.target.closest('a.result');
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    jumpTo(Number(a.dataset.seq));
  });

  // ---- Renaming (the room's creator) ----

  // A new title for this room, given here or by its creator on another page (a "room" frame or
  // event): the heading, the page's title and the list beside the room show it. A direct
  // conversation is named by the other account and keeps its heading.
  function roomRenamed(f) {
    if (!f || f.room !== ROOM || WITH) return;
    const topicEl = $('room-topic');
    if (topicEl && f.topic !== undefined) {
      topicEl.textContent = f.topic || '';
      topicEl.title = f.topic || '';
      const editing = $('rename-form') && !$('rename-form').hidden;
      topicEl.hidden = !f.topic || editing;
    }
    const heading = $('room-title');
    const title = f.title || ROOM;
    const old = heading.textContent;
    if (old === title) return;
    heading.textContent = title;
    TITLE = TITLE.replace(old, title);
    document.title = document.title.replace(old, title);
    const nav = document.querySelector(`#rooms li[data-room="${CSS.escape(ROOM)}"] .room-title`);
    if (nav) nav.textContent = title;
  }

  const renameButton = $('rename');
  if (renameButton) {
    const form = $('rename-form');
    const input = $('rename-title');
    const heading = $('room-title');
    const close = () => {
      form.hidden = true;
      heading.hidden = false;
      $('room-topic').hidden = !$('room-topic').textContent;
      renameButton.hidden = false;
      showError($('rename-error'), '');
    };
    const topicInput = $('rename-topic');
    renameButton.addEventListener('click', () => {
      input.value = heading.textContent;
      topicInput.value = $('room-topic').textContent;
      $('room-topic').hidden = true;
      heading.hidden = true;
      renameButton.hidden = true;
      form.hidden = false;
      input.focus();
      input.select();
    });
    $('rename-cancel').addEventListener('click', close);
    for (const field of [input, topicInput]) {
      field.addEventListener('keydown', (ev) => {
        if (ev.key === 'Escape') close();
        if (ev.key === 'Enter' && !ev.isComposing) {
          ev.preventDefault();
          form.requestSubmit();
        }
      });
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const { data } = await api('PATCH', ROOM_API, { title: input.value.trim(), topic: topicInput.value.trim() });
        roomRenamed({ room: ROOM, title: data.room.title, topic: data.room.topic || '' });
        close();
      } catch (err) {
        if (err.status === 401) { goSignIn(); return; }
        showError($('rename-error'), err.message);
      }
    });
  }

  // ---- Deleting the room (its moderators) ----

  const deleteButton = $('delete-room');
  if (deleteButton) {
    const form = $('delete-room-form');
    const close = () => {
      form.hidden = true;
      deleteButton.hidden = false;
      showError($('delete-room-error'), '');
    };
    deleteButton.addEventListener('click', () => {
      deleteButton.hidden = true;
      form.hidden = false;
      $('delete-room-cancel').focus();
    });
    $('delete-room-cancel').addEventListener('click', close);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api('DELETE', ROOM_API);
        location.assign('/');
      } catch (err) {
        if (err.status === 401) { goSignIn(); return; }
        showError($('delete-room-error'), err.message);
      }
    });
  }

  // ---- Closing a direct conversation ----

  const closeDirect = $('close-direct');
  if (closeDirect) {
    closeDirect.addEventListener('click', async () => {
      try {
        await api('DELETE', '/api/dms/' + encodeURIComponent(WITH));
        location.assign('/');
      } catch (err) {
        if (err.status === 401) { goSignIn(); return; }
        showError($('close-error'), err.message);
      }
    });
  }

  // ---- Members (a private room) ----

  const membersEl = $('members');
  if (membersEl) {
    const form = $('add-member');
    const errEl = $('member-error');
    // The room's creator may remove the others; any other member may leave.
    const remove = async (name) => {
      try {
        await api('DELETE', `${ROOM_API}/members/${encodeURIComponent(name)}`);
        if (name === ME) location.assign('/');
        else load();
      } catch (err) {
        if (err.status === 401) { goSignIn(); return; }
        showError(errEl, err.message);
      }
    };
    const show = (names) => {
      membersEl.replaceChildren(...names.map((n) => {
        const li = document.createElement('li');
        li.dataset.user = n;
        li.textContent = n === ME ? `${n} (you)` : n;
        const label = n === ME ? (MODERATOR ? '' : 'Leave') : (MODERATOR ? 'Remove' : '');
        if (label) {
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'btn btn-quiet btn-small';
          b.textContent = label;
          b.setAttribute('aria-label', n === ME ? 'Leave this room' : `Remove ${n} from this room`);
          b.addEventListener('click', () => remove(n));
          li.append(' ', b);
        }
        return li;
      }));
      $('members-count').textContent = String(names.length);
    };
    const load = async () => {
      try {
        const { data } = await api('GET', `${ROOM_API}/members`);
        show(data.members);
      } catch (err) {
        if (err.status === 401) goSignIn();
      }
    };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = form.elements.name.value.trim();
      if (!name) return;
      try {
        await api('PUT', `${ROOM_API}/members/${encodeURIComponent(name)}`);
        form.elements.name.value = '';
        showError(errEl, '');
        load();
      } catch (err) {
        if (err.status === 401) { goSignIn(); return; }
        showError(errEl, err.message);
      }
    });
    load();
  }

  // ---- Invite links (a private room) ----
  //
  // Any member makes a link; the server shows its code once, so the new link stays in the box
  // until the next is made. The list holds the links that still work, with Revoke for their
  // maker and the room's moderators.

  const invitesEl = $('invites');
  if (invitesEl) {
    const form = $('make-invite');
    const errEl = $('invite-error');
    const when = (iso) => new Date(iso).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
    const revoke = async (id) => {
      try {
        await api('DELETE', `${ROOM_API}/invites/${encodeURIComponent(id)}`);
        showError(errEl, '');
        load();
      } catch (err) {
        if (err.status === 401) { goSignIn(); return; }
        showError(errEl, err.message);
      }
    };
    const show = (list) => {
      invitesEl.replaceChildren(...list.map((inv) => {
        const li = document.createElement('li');
        li.dataset.invite = inv.id;
        const uses = inv.max_uses ? `${inv.uses} of ${inv.max_uses} used` : `${inv.uses} joined`;
        li.textContent = `${inv.created_by === ME ? 'yours' : `by ${inv.created_by}`}, until ${when(inv.expires_at)}, ${uses}`;
        if (inv.created_by === ME || MODERATOR) {
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'btn btn-quiet btn-small';
          b.textContent = 'Revoke';
          b.setAttribute('aria-label', `Revoke the invite link made by ${inv.created_by}`);
          b.addEventListener('click', () => revoke(inv.id));
          li.append(' ', b);
        }
        return li;
      }));
      $('invites-count').textContent = list.length ? String(list.length) : '';
      invitesEl.dataset.count = String(list.length); // absent until the list is read
    };
    const load = async () => {
      try {
        const { data } = await api('GET', `${ROOM_API}/invites`);
        show(data.invites);
      } catch (err) {
        if (err.status === 401) goSignIn();
      }
    };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        const { data } = await api('POST', `${ROOM_API}/invites`, {
          expires_in: form.elements.expires_in.value, max_uses: Number(form.elements.max_uses.value),
        });
        $('invite-link').value = location.origin + data.invite.link;
        $('invite-new').hidden = false;
        $('invite-copy').textContent = 'Copy';
        $('invite-link').select();
        showError(errEl, '');
        load();
      } catch (err) {
        if (err.status === 401) { goSignIn(); return; }
        showError(errEl, err.message);
      } finally {
        button.disabled = false;
      }
    });
    $('invite-copy').addEventListener('click', async () => {
      const input = $('invite-link');
      try {
        await navigator.clipboard.writeText(input.value);
        $('invite-copy').textContent = 'Copied';
      } catch {
        input.select(); // the clipboard is not ours to write (an insecure origin): select it to copy by hand
      }
    });
    load();
  }

  // ---- Pins ----
  //
  // The room's pinned messages, the latest pinned first, in the side panel: each opens the
  // message in the log (loading history back to it). The list is the server's (GET .../pins),
  // read at load and again shortly after any pin, unpin or deletion of a pinned message passes
  // by; a pinned message shows a mark, and Pin or Unpin among its tools for those who may.
  let pinned = new Map(); // seq -> {by, at, message}
  let pinsTimer = null;
  function schedulePins() {
    clearTimeout(pinsTimer);
    pinsTimer = setTimeout(loadPins, 200);
  }
  async function loadPins() {
    try {
      const { data } = await api('GET', `${ROOM_API}/pins`);
      pinned = new Map(data.pins.map((p) => [p.seq, p]));
      renderPins();
    } catch (err) {
      if (err.status === 401) goSignIn();
    }
  }
  function renderPins() {
    const list = $('pins');
    list.replaceChildren(...[...pinned.values()].map((p) => {
      const li = document.createElement('li');
      li.dataset.seq = String(p.seq);
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'pin-open';
      const shown = log.shown.get(p.seq);
      const { author, text } = shown ? quoteOf(shown) : { author: p.message.author, text: plainText((p.latest_edit || p.message).body).slice(0, QUOTE_CHARS) };
      const who = document.createElement('span');
      who.className = 'pin-author';
      who.textContent = author;
      open.append(who, text);
      open.title = `Pinned by ${p.by}`;
      open.addEventListener('click', () => jumpTo(p.seq));
      li.append(open);
      if (CAN_PIN) {
        const unpin = document.createElement('button');
        unpin.type = 'button';
        unpin.className = 'btn btn-quiet btn-small unpin';
        unpin.textContent = 'Unpin';
        unpin.setAttribute('aria-label', `Unpin ${author}'s message`);
        unpin.addEventListener('click', () => setPin(p.seq, false));
        li.append(unpin);
      }
      return li;
    }));
    $('pins-count').textContent = String(pinned.size);
    $('pins-section').hidden = pinned.size === 0;
    for (const li of log.shown.values()) showPinned(li);
  }
  function showPinned(li) {
    const seq = Number(li.dataset.seq);
    const on = pinned.has(seq) && !li.classList.contains('deleted');
    li.classList.toggle('pinned', on);
    const b = li.querySelector('.pin-actions button');
    if (b) {
      b.textContent = on ? 'Unpin' : 'Pin';
      b.setAttribute('aria-label', on ? 'Unpin this message' : 'Pin this message to the room');
    }
    let mark = li.querySelector('.pin-mark');
    if (on && !mark) {
      mark = document.createElement('span');
      mark.className = 'pin-mark';
      mark.textContent = 'pinned';
      li.querySelector('.meta').append(mark);
    } else if (!on) mark?.remove();
  }
  async function setPin(seq, on) {
    showError($('pins-error'), '');
    try {
      const { data } = await api('POST', `${ROOM_API}/messages`, { kind: on ? 'pin' : 'unpin', target: seq, client_id: newClientID() });
      deliver(data.message);
      await loadPins();
    } catch (err) {
      if (err.status === 401) { goSignIn(); return; }
      showError(on ? els.composerError : $('pins-error'), err.message);
    }
  }
  function togglePin(li) { setPin(Number(li.dataset.seq), !pinned.has(Number(li.dataset.seq))); }
  loadPins();

  // ---- Bans ----

  // setBanned shows the composer or, to a banned user, the note in its place. WebSocket and SSE
  // pages hear of a ban at once; a long-polling page when a send is refused.
  // A ban with an end lifts itself then: nobody is told, so the page ends it at that time and
  // asks the server whether another ban took its place.
  let banEnds = null;
  function setBanned(on, until, reason) {
    banned = on;
    root.classList.toggle('banned', on);
    els.form.classList.toggle('is-banned', on);
    $('banned-note').hidden = !on;
    clearTimeout(banEnds);
    if (!on) return;
    cancelReply();
    const end = until ? new Date(until) : null;
    $('ban-terms').textContent = (end ? ` until ${end.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })}` : '') + (reason ? ` (${reason})` : '');
    // setTimeout waits at most about 24.8 days; a longer ban is checked again then.
    if (end) banEnds = setTimeout(recheckBanned, Math.min(end - Date.now() + 500, 2 ** 31 - 1));
  }
  if (banned) setBanned(true, root.dataset.banUntil, root.dataset.banReason);

  // recheckBanned asks whether the user is banned now: after a refused send (a long-polling page
  // hears of bans no other way), and when a ban's end comes.
  async function recheckBanned() {
    try {
      const { data } = await api('GET', ROOM_API);
      if (!!data.room.banned !== banned || data.room.banned) setBanned(!!data.room.banned, data.room.ban_until, data.room.ban_reason);
    } catch { /* the refusal is shown on the message anyway */ }
  }

  function banEvent(f) {
    if (!f || f.room !== ROOM) return;
    if (f.user === ME) setBanned(!!f.banned, f.until, f.reason);
    if (bansEl) loadBans();
  }

  // For the room's moderators: the banned users, with the ban-by-name form.
  const bansEl = $('bans');
  async function setBan(name, on, errEl) {
    showError(errEl, '');
    try {
      // Banning takes the terms chosen in the panel: for how long, and why.
      const form = $('add-ban');
      const terms = on ? { for: form.elements.for.value, reason: form.elements.reason.value.trim() } : undefined;
      await api(on ? 'PUT' : 'DELETE', `${ROOM_API}/bans/${encodeURIComponent(name)}`, terms);
      loadBans();
      return true;
    } catch (err) {
      if (err.status === 401) { goSignIn(); return false; }
      showError(errEl, err.message);
      return false;
    }
  }
  async function loadBans() {
    if (!bansEl) return;
    try {
      const { data } = await api('GET', `${ROOM_API}/bans`);
      bans = new Set(data.bans.map((b) => b.user));
      bansEl.replaceChildren(...data.bans.map((b) => {
        const li = document.createElement('li');
        li.dataset.user = b.user;
        const until = b.until ? new Date(b.until).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : '';
        li.textContent = b.user + (until ? ` (until ${until})` : '');
        li.title = `Banned by ${b.by}` + (b.reason ? `: ${b.reason}` : '');
        const lift = document.createElement('button');
        lift.type = 'button';
        lift.className = 'btn btn-quiet btn-small';
        lift.textContent = 'Lift';
        lift.setAttribute('aria-label', `Let ${b.user} post here again`);
        lift.addEventListener('click', () => setBan(b.user, false, $('ban-error')));
        li.append(' ', lift);
        return li;
      }));
      $('bans-count').textContent = String(data.bans.length);
      renderOnline();
    } catch (err) {
      if (err.status === 401) goSignIn();
    }
  }
  if (bansEl) {
    const form = $('add-ban');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = form.elements.name.value.trim().toLowerCase();
      if (!name) return;
      if (await setBan(name, true, $('ban-error'))) {
        form.elements.name.value = '';
        form.elements.reason.value = '';
      }
    });
    loadBans();
  }

  // ---- Composer ----

  els.replyCancel.addEventListener('click', () => {
    cancelReply();
    els.body.focus();
  });
  // ---- Mentions: "@" and the start of a name offers the names of the room's people ----

  // Who may be mentioned: those online and the authors of the last messages on the page.
  const MENTION_CHOICES = 8;
  const mentionsEl = $('mentions');
  let mentionAt = -1; // where the "@" being completed is in the box; -1: none
  let mentionPick = 0;
  function mentionNames(prefix) {
    const names = new Set(online);
    const shown = els.list.querySelectorAll(':scope > li[data-author]');
    for (let i = shown.length - 1; i >= Math.max(0, shown.length - 200); i--) names.add(shown[i].dataset.author);
    names.delete(ME);
    return [...names].filter((n) => n.startsWith(prefix)).sort().slice(0, MENTION_CHOICES);
  }
  function closeMentions() {
    mentionAt = -1;
    mentionPick = 0;
    mentionsEl.hidden = true;
    mentionsEl.replaceChildren();
    els.body.setAttribute('aria-expanded', 'false');
    els.body.removeAttribute('aria-activedescendant');
  }
  function updateMentions() {
    const caret = els.body.selectionStart;
    const m = caret === els.body.selectionEnd && /(^|[^a-z0-9_.@-])@([a-z0-9_.-]{0,31})$/i.exec(els.body.value.slice(0, caret));
    const names = m ? mentionNames(m[2].toLowerCase()) : [];
    if (!names.length || (names.length === 1 && names[0] === m[2])) {
      closeMentions();
      return;
    }
    const at = caret - m[2].length - 1;
    if (at !== mentionAt) mentionPick = 0;
    mentionAt = at;
    mentionPick = Math.min(mentionPick, names.length - 1);
    mentionsEl.replaceChildren(...names.map((n, i) => {
      const li = document.createElement('li');
      li.id = 'mention-' + i;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(i === mentionPick));
      li.dataset.user = n;
      li.textContent = '@' + n;
      li.addEventListener('mousedown', (ev) => ev.preventDefault()); // keep the box focused
      li.addEventListener('click', () => pickMention(n));
      return li;
    }));
    mentionsEl.hidden = false;
    els.body.setAttribute('aria-expanded', 'true');
    els.body.setAttribute('aria-activedescendant', 'mention-' + mentionPick);
  }
  function pickMention(name) {
    const v = els.body.value;
    const insert = '@' + name + ' ';
    els.body.value = v.slice(0, mentionAt) + insert + v.slice(els.body.selectionStart);
    const pos = mentionAt + insert.length;
    els.body.setSelectionRange(pos, pos);
    closeMentions();
    els.body.dispatchEvent(new Event('input'));
    els.body.focus();
  }
  els.body.addEventListener('input', updateMentions);
  els.body.addEventListener('click', updateMentions);
  els.body.addEventListener('blur', closeMentions);
  // While the choices show, the arrows move among them, Enter or Tab takes one, Escape closes
  // them; this runs before the box's other keys (Enter sends).
  els.body.addEventListener('keydown', (ev) => {
    if (mentionsEl.hidden || ev.isComposing) return;
    const n = mentionsEl.children.length;
    const take = () => { ev.preventDefault(); ev.stopImmediatePropagation(); };
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      take();
      mentionPick = (mentionPick + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
      for (const [i, li] of [...mentionsEl.children].entries()) li.setAttribute('aria-selected', String(i === mentionPick));
      els.body.setAttribute('aria-activedescendant', 'mention-' + mentionPick);
    } else if ((ev.key === 'Enter' && !ev.shiftKey) || ev.key === 'Tab') {
      take();
      pickMention(mentionsEl.children[mentionPick].dataset.user);
    } else if (ev.key === 'Escape') {
      take();
      closeMentions();
    }
  });

  els.body.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && replyTo) {
      cancelReply();
      return;
    }
    // Up in an empty box edits one's last message, as in other chat apps.
    if (ev.key === 'ArrowUp' && !els.body.value && !GUEST && !banned) {
      const mine = [...els.list.querySelectorAll(':scope > li.mine[data-seq]:not(.deleted)')].pop();
      if (mine) {
        ev.preventDefault();
        startEdit(mine);
      }
      return;
    }
    if (ev.key !== 'Enter' || ev.shiftKey || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.isComposing || ev.keyCode === 229) return; // an IME is composing: Enter picks a word
    ev.preventDefault();
    els.form.requestSubmit();
  });
  els.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body = els.body.value.replace(/\s+$/, '');
    if (!body.trim()) return;
    const n = [...body].length;
    if (n > MAX_BODY) {
      showError(els.composerError, `A message can have at most ${MAX_BODY} characters; this one has ${n}.`);
      return;
    }
    showError(els.composerError, '');
    queueMessage(body, replyTo ? Number(replyTo.dataset.seq) : 0);
    cancelReply();
    els.body.value = '';
    els.body.dispatchEvent(new Event('input'));
    els.body.focus();
  });
  // ---- Drafts ----

  // What is typed and not sent is kept in this browser per account and room (localStorage), so
  // that leaving the room, a reload or a closed tab does not lose it; sending clears it.
  const DRAFT_KEY = `natter.draft.${ME}.${ROOM}`;
  const draftStore = (() => { try { return window.localStorage; } catch { return null; } })();
  let draftTimer = null;
  function saveDraft() {
    clearTimeout(draftTimer);
    draftTimer = null;
    try {
      if (els.body.value.trim()) draftStore?.setItem(DRAFT_KEY, els.body.value);
      else draftStore?.removeItem(DRAFT_KEY);
    } catch { /* storage full or refused: the draft is only a convenience */ }
  }
  els.body.addEventListener('input', () => {
    if (!draftTimer) draftTimer = setTimeout(saveDraft, 300);
  });
  window.addEventListener('pagehide', saveDraft);

  // Browsers without field-sizing grow the box by script.
  if (!(window.CSS && CSS.supports && CSS.supports('field-sizing', 'content'))) {
    els.body.addEventListener('input', () => {
      els.body.style.height = 'auto';
      els.body.style.height = Math.min(els.body.scrollHeight + 2, 160) + 'px';
    });
  }

  const draft = draftStore?.getItem(DRAFT_KEY);
  if (draft && !els.body.value) {
    els.body.value = draft;
    els.body.dispatchEvent(new Event('input'));
  }

  renderOnline();
  start();
})();
