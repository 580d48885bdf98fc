// natter: the script of every page. It signs in, registers, creates rooms and signs out through
// the JSON API. Text from users only ever reaches the page through textContent.
'use strict';

(() => {
  /** An API error: the contract's {"error": {"code", "message"}} plus the HTTP status. */
  class APIError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  /**
   * api calls the JSON API on this origin with the session cookie. It resolves to the decoded
   * body, or rejects with an APIError (status 0 when the server can't be reached).
   */
  async function api(method, path, body, opts = {}) {
    const init = {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
      signal: opts.signal,
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new APIError(0, 'unreachable', 'natter can’t be reached. Check your connection.');
    }
    let data = null;
    if (res.status !== 204) {
      try { data = await res.json(); } catch { data = null; }
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      const retry = Number(res.headers.get('Retry-After')) || 0;
      throw new APIError(res.status, e.code || 'http_' + res.status, e.message || `The server answered ${res.status}.`, retry);
    }
    return { status: res.status, data };
  }

  function showError(el, message) {
    if (!el) return;
    el.textContent = message;
    el.hidden = !message;
  }

  /** signInPath returns the sign-in page that leads back to where the user is. */
  function signInPath() {
    return '/signin?next=' + encodeURIComponent(location.pathname + location.search);
  }

  // setUnread shows n new messages on a room list's item (none: no badge), as unread.html does.
  function setUnread(li, n) {
    let badge = li.querySelector('.room-unread');
    if (!n) {
      if (badge) badge.remove();
      return;
    }
    if (!badge) {
      badge = document.createElement('span');
      badge.className = 'room-unread';
      (li.querySelector('a') || li).append(badge);
    }
    badge.dataset.unread = String(n);
    badge.textContent = `${n} new`;
  }

  // setMuted marks a listed room muted (greyed, and "(muted)" for screen readers) or not.
  function setMuted(li, on) {
    li.classList.toggle('muted', on);
    let label = li.querySelector('.room-muted');
    if (!on) {
      if (label) label.remove();
      return;
    }
    if (!label) {
      label = document.createElement('span');
      label.className = 'visually-hidden room-muted';
      label.textContent = ' (muted)';
      li.querySelector('.room-title')?.after(label);
    }
  }

  // setMentions shows beside a listed room how many of its new messages name the reader.
  function setMentions(li, n) {
    let badge = li.querySelector('.room-mention');
    if (!n) {
      if (badge) badge.remove();
      return;
    }
    if (!badge) {
      badge = document.createElement('span');
      badge.className = 'room-mention';
      (li.querySelector('a') || li).append(badge);
    }
    badge.dataset.mentions = String(n);
    badge.textContent = `@${n}`;
    badge.title = `${n} new ${n === 1 ? 'message names' : 'messages name'} you`;
  }

  window.natter = { api, APIError, showError, signInPath, setUnread, setMuted };

  // Sign out: one session ends on the server, then the sign-in page. Without script the form
  // posts to /signout, which does the same. The unsent drafts kept in this browser go too.
  for (const form of document.querySelectorAll('form[data-signout]')) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        for (const k of Object.keys(localStorage)) if (k.startsWith('natter.draft.')) localStorage.removeItem(k);
      } catch { /* no storage: nothing kept */ }
      try {
        await api('DELETE', '/api/session');
      } catch (err) {
        if (err.status !== 401) {
          form.submit(); // fall back to the plain form
          return;
        }
      }
      location.assign('/signin');
    });
  }

  // The room list stays current: a second after it loads, every ROOMS_EVERY while the page is
  // visible, and when it is shown again (another tab, Back from a room), it asks for the rooms and updates each one's count of
  // messages and of new ones, adds the rooms created meanwhile in name order, and drops those no
  // longer listed. Rooms already listed keep their markup (an operator's template may have
  // changed it); only the counts move.
  const roomList = document.getElementById('rooms');
  if (roomList) {
    const ROOMS_EVERY = 10000;
    const span = (cls, text) => {
      const e = document.createElement('span');
      e.className = cls;
      e.textContent = text;
      return e;
    };
    // A direct conversation is named by the other account; any other room by its title.
    const shownTitle = (r) => (r.with ? '@' + r.with : r.title || r.name);
    const updateRoom = (li, r) => {
      const title = li.querySelector('.room-title');
      if (title && title.textContent !== shownTitle(r)) title.textContent = shownTitle(r); // renamed
      const online = li.querySelector('.room-online');
      if (online) {
        online.dataset.people = String(r.online || 0);
        online.textContent = ` · ${r.online || 0} online`;
        online.hidden = !r.online;
      }
      const about = li.querySelector('.room-about');
      if (about) {
        about.textContent = r.topic || '';
        about.hidden = !r.topic;
      }
      const count = li.querySelector('.room-count');
      const n = r.messages ?? r.last_seq;
      if (count) count.textContent = `${n} ${n === 1 ? 'message' : 'messages'}`;
      setUnread(li, r.unread ?? 0);
      setMentions(li, r.mentions ?? 0);
      setMuted(li, !!r.muted);
    };
    const newRoom = (r) => {
      const li = document.createElement('li');
      li.dataset.room = r.name;
      if (r.with) li.dataset.with = r.with;
      const a = document.createElement('a');
      a.href = '/rooms/' + encodeURIComponent(r.name);
      const name = span('room-name', r.with ? '' : '#' + r.name);
      if (r.with) name.prepend(span('room-direct', 'direct'));
      else if (r.private) name.prepend(span('room-private', 'private'), ' ');
      name.append(span('room-online', ''));
      const about = span('room-about', '');
      about.hidden = true;
      a.append(span('room-title', shownTitle(r)), name, span('room-count', ''), about);
      li.append(a);
      return li;
    };
    let refreshing = false;
    const refresh = async () => {
      if (refreshing || document.visibilityState !== 'visible') return;
      refreshing = true;
      try {
        const { data } = await api('GET', '/api/rooms');
        const items = new Map([...roomList.querySelectorAll(':scope > li[data-room]')].map((li) => [li.dataset.room, li]));
        // The server's order (listOrder): rooms by name, then direct conversations by who.
        const key = (name, who) => (who ? '1' + who + '\0' + name : '0' + name);
        for (const r of data.rooms) {
          let li = items.get(r.name);
          if (!li) {
            li = newRoom(r);
            const k = key(r.name, r.with);
            const next = [...items.values()].filter((o) => key(o.dataset.room, o.dataset.with) > k)
              .sort((x, y) => (key(x.dataset.room, x.dataset.with) < key(y.dataset.room, y.dataset.with) ? -1 : 1))[0];
            roomList.insertBefore(li, next || null);
            items.set(r.name, li);
          }
          updateRoom(li, r);
        }
        // Rooms no longer listed (a conversation closed, a private room left, on any device)
        // go, but for the room this page shows.
        const listed = new Set(data.rooms.map((r) => r.name));
        for (const [name, li] of items) {
          if (!listed.has(name) && !li.querySelector('a[aria-current]')) li.remove();
        }
      } catch (err) {
        if (err.status === 401) location.assign(signInPath());
      } finally {
        refreshing = false;
      }
    };
    setInterval(refresh, ROOMS_EVERY);
    // The room just left sends its read mark as the page goes: it may reach the server after
    // this page's request did, so look again a moment after loading.
    setTimeout(refresh, 1000);
    document.addEventListener('visibilitychange', refresh);
    window.addEventListener('pageshow', (ev) => {
      if (ev.persisted) refresh();
    });
  }

  // Names (of accounts and rooms) are lower case: type "Alice" into el and get "alice". Typing
  // also clears el's invalid mark.
  const lowerCaseNames = (el) => {
    el.addEventListener('input', () => {
      const lower = el.value.toLowerCase();
      if (lower !== el.value) el.value = lower;
      el.removeAttribute('aria-invalid');
    });
  };

  // Sign in, register or continue as a guest.
  const signin = document.getElementById('signin');
  if (signin) {
    const nameEl = signin.elements.name;
    const passEl = signin.elements.password;
    const errEl = document.getElementById('signin-error');
    const minPass = Number(signin.dataset.minPassword) || 6;
    const next = signin.dataset.next || '/';
    lowerCaseNames(nameEl);
    signin.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const action = (ev.submitter && ev.submitter.value) || 'signin';
      const name = nameEl.value.trim().toLowerCase();
      const password = action === 'guest' ? '' : passEl.value;
      if (!nameEl.checkValidity() || !name) {
        nameEl.setAttribute('aria-invalid', 'true');
        showError(errEl, 'Enter a name: 1 to 32 lower-case letters, digits, _ . or -, starting with a letter or digit.');
        nameEl.focus();
        return;
      }
      if (action === 'register' && [...password].length < minPass) {
        showError(errEl, `Choose a password of at least ${minPass} characters to register.`);
        passEl.focus();
        return;
      }
      showError(errEl, '');
      const buttons = signin.querySelectorAll('button');
      buttons.forEach((b) => { b.disabled = true; });
      try {
        if (action === 'register') await api('POST', '/api/users', { name, password });
        await api('POST', '/api/session', { name, password });
        location.assign(next);
      } catch (err) {
        showError(errEl, err.message);
        buttons.forEach((b) => { b.disabled = false; });
      }
    });
  }

  // Create a room, then open it.
  const create = document.getElementById('create-room');
  if (create) {
    const errEl = document.getElementById('create-error');
    const nameEl = create.elements.name;
    lowerCaseNames(nameEl);
    create.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = nameEl.value.trim();
      const title = create.elements.title.value.trim();
      if (!nameEl.checkValidity() || !name) {
        nameEl.setAttribute('aria-invalid', 'true');
        showError(errEl, 'Enter a room name: lower-case letters, digits, _ and -, starting with a letter or digit.');
        nameEl.focus();
        return;
      }
      showError(errEl, '');
      const button = create.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        await api('POST', '/api/rooms', { name, title, private: !!create.elements.private?.checked });
        location.assign('/rooms/' + encodeURIComponent(name));
      } catch (err) {
        if (err.status === 401) { location.assign(signInPath()); return; }
        showError(errEl, err.message);
        button.disabled = false;
      }
    });
  }

  // Message someone: open the direct conversation with an account (made the first time), then go
  // to it.
  const direct = document.getElementById('open-direct');
  if (direct) {
    const errEl = document.getElementById('direct-error');
    const nameEl = direct.elements.user;
    lowerCaseNames(nameEl);
    const open = async (ev) => {
      ev.preventDefault();
      const user = nameEl.value.trim().replace(/^@/, '');
      if (!user) {
        nameEl.setAttribute('aria-invalid', 'true');
        showError(errEl, 'Enter the name of the account to talk with.');
        nameEl.focus();
        return;
      }
      showError(errEl, '');
      const button = direct.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        const { data } = await api('POST', '/api/dms', { user });
        location.assign('/rooms/' + encodeURIComponent(data.room.name));
      } catch (err) {
        if (err.status === 401) { location.assign(signInPath()); return; }
        nameEl.setAttribute('aria-invalid', 'true');
        showError(errEl, err.message);
        button.disabled = false;
      }
    };
    direct.addEventListener('submit', open);
  }

  // The account page: change the password (the other sessions end), or sign out everywhere.
  const change = document.getElementById('change-password');
  if (change) {
    const errEl = document.getElementById('change-password-error');
    const doneEl = document.getElementById('change-password-done');
    const currentEl = change.elements.password;
    const nextEl = change.elements.new_password;
    const minPass = Number(change.dataset.minPassword) || 6;
    change.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      showError(doneEl, '');
      if (!currentEl.value) {
        showError(errEl, 'Enter your current password.');
        currentEl.focus();
        return;
      }
      if ([...nextEl.value].length < minPass) {
        showError(errEl, `Choose a new password of at least ${minPass} characters.`);
        nextEl.focus();
        return;
      }
      showError(errEl, '');
      const button = change.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        await api('PUT', '/api/account/password', { password: currentEl.value, new_password: nextEl.value });
        change.reset();
        showError(doneEl, 'Your password is changed. Your other sessions are signed out.');
      } catch (err) {
        if (err.status === 401) { location.assign(signInPath()); return; }
        showError(errEl, err.message);
      } finally {
        button.disabled = false;
      }
    });
  }
  const everywhere = document.getElementById('signout-everywhere');
  if (everywhere) {
    const errEl = document.getElementById('signout-everywhere-error');
    everywhere.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = everywhere.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        await api('DELETE', '/api/account/sessions');
      } catch (err) {
        if (err.status !== 401) {
          showError(errEl, err.message);
          button.disabled = false;
          return;
        }
      }
      location.assign('/signin');
    });
  }
  const deleteAccount = document.getElementById('delete-account');
  if (deleteAccount) {
    const errEl = document.getElementById('delete-account-error');
    const passEl = deleteAccount.elements.password;
    deleteAccount.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!passEl.value) {
        showError(errEl, 'Enter your password to delete your account.');
        passEl.focus();
        return;
      }
      showError(errEl, '');
      const button = deleteAccount.querySelector('button[type=submit]');
      button.disabled = true;
      try {
        await api('DELETE', '/api/account', { password: passEl.value, erase_messages: deleteAccount.elements.erase_messages.checked });
      } catch (err) {
        if (err.status === 401) { location.assign(signInPath()); return; }
        showError(errEl, err.message);
        button.disabled = false;
        return;
      }
      location.assign('/signin');
    });
  }

  // The join page of an invite's link: joining is a POST, so that opening the link (or its
  // preview in another app) uses none of the invite.
  const joinRoom = document.getElementById('join-room');
  if (joinRoom) {
    const errEl = document.getElementById('join-error');
    const { room, code } = joinRoom.dataset;
    joinRoom.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = joinRoom.querySelector('button[type=submit]');
      button.disabled = true;
      showError(errEl, '');
      try {
        await api('POST', `/api/rooms/${encodeURIComponent(room)}/join`, { code });
      } catch (err) {
        if (err.status === 401) { location.assign(signInPath()); return; }
        showError(errEl, err.message);
        button.disabled = false;
        return;
      }
      location.assign(`/rooms/${encodeURIComponent(room)}`);
    });
  }
})();
