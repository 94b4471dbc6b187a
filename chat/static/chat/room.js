// The room page: speaks PROTOCOL.md over one WebSocket, pages older history over HTTP.
//
// Invariants: the log holds at most one element per seq (dedupe by seq, whatever the
// source: replay, live, ack, scrollback); `lastSeq` is the highest seq received over
// the socket, whose delivery is gapless, so `?since=lastSeq` on reconnect resumes
// with no gap and no duplicate. Every piece of user data goes into the DOM through
// textContent, never innerHTML.
//
// A permalink (`?at=SEQ`, config.at) opens the room at that message: a page around
// it from the scrollback API, older pages on scroll-up, newer ones on scroll-down;
// the socket connects with `?since=` once the newest page reaches the room's head.

// Django's JavaScript catalog (/jsi18n/, loaded before this module) defines these.
const gettext = window.gettext || ((s) => s);
const gettext_noop = (s) => s;
const interpolate = window.interpolate || ((s) => s);

const config = JSON.parse(document.getElementById("room-config").textContent);
const els = {
  log: document.getElementById("log"),
  scroll: document.getElementById("log-scroll"),
  top: document.getElementById("log-top"),
  status: document.getElementById("status"),
  form: document.getElementById("composer"),
  input: document.getElementById("message-input"),
  error: document.getElementById("composer-error"),
  presence: document.getElementById("presence"),
  latest: document.getElementById("jump-latest"),
};

const bySeq = new Map(); // seq of a posted message -> <li>
let lowestSeq = null; // the oldest seq of any event shown or applied: where scrollback continues
const pending = new Map(); // client_id -> {text, el}
let lastSeq = 0; // highest seq received over the socket
let everConnected = false;
let socket = null;
let attempts = 0;
let reconnectTimer = null;
let stopped = false;
let hasMore = true;
let loadingOlder = false;
let readSent = 0;
let readTimer = null;
let startSince = null; // permalink mode: the socket resumes after the newest page loaded over HTTP
let hasNewer = false; // permalink mode: newer events than those shown remain to be paged in
let highestLoaded = 0;
let loadingNewer = false;

const timeFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
  hour: "2-digit",
  minute: "2-digit",
});
const dateFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
  dateStyle: "medium",
  timeStyle: "medium",
});

const ERROR_TEXT = {
  invalid_message: gettext_noop("The message was not accepted: it is empty, too long or contains characters that cannot be sent."),
  rate_limited: gettext_noop("You are sending messages too fast. Wait a moment, then resend."),
  conflict: gettext_noop("This message conflicts with another one sent with the same key."),
  unavailable: gettext_noop("The chat could not save the message. Retry in a moment."),
  too_large: gettext_noop("The message is too large."),
  unauthenticated: gettext_noop("You are signed out. Sign in again to chat."),
  forbidden: gettext_noop("You may not read this room."),
  invalid_request: gettext_noop("This room name is not valid."),
  invalid_json: gettext_noop("The page sent something the server did not understand."),
  unknown_type: gettext_noop("The page sent something the server did not understand."),
};

// ---- rendering -------------------------------------------------------------

function messageElement() {
  const li = document.createElement("li");
  li.className = "msg";
  const meta = document.createElement("div");
  meta.className = "msg-meta";
  const author = document.createElement("span");
  author.className = "msg-author";
  const time = document.createElement("time");
  time.className = "msg-time";
  const state = document.createElement("span");
  state.className = "msg-state";
  meta.append(author, time, state);
  const text = document.createElement("div");
  text.className = "msg-text";
  li.append(meta, text);
  return li;
}

function fill(li, { username, message, ts, edited, redacted }) {
  li.querySelector(".msg-author").textContent = username;
  showText(li, message, { edited, redacted });
  const time = li.querySelector(".msg-time");
  const when = ts ? new Date(ts) : new Date();
  time.dateTime = when.toISOString();
  time.textContent = timeFormat.format(when);
  time.title = dateFormat.format(when);
  li.classList.toggle("msg-own", username === config.username);
}

function showText(li, message, { edited = false, redacted = false } = {}) {
  const text = li.querySelector(".msg-text");
  text.textContent = redacted ? gettext("This message was deleted.") : message;
  li.classList.toggle("msg-redacted", Boolean(redacted));
  let mark = li.querySelector(".msg-edited");
  if (edited && !redacted && !mark) {
    mark = document.createElement("span");
    mark.className = "msg-edited";
    mark.textContent = gettext("(edited)");
    li.querySelector(".msg-time").after(mark);
  } else if ((!edited || redacted) && mark) {
    mark.remove();
  }
}

function setState(li, state) {
  li.dataset.state = state;
  const label = { pending: gettext("sending…"), sent: gettext("sent"), failed: gettext("not sent") }[state] || "";
  li.querySelector(".msg-state").textContent = label;
  const retry = li.querySelector(".msg-retry");
  if (state === "failed" && !retry) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "msg-retry";
    button.textContent = gettext("Retry");
    button.addEventListener("click", () => {
      setState(li, "pending");
      sendPending(li.dataset.clientId);
    });
    li.querySelector(".msg-meta").append(button);
  } else if (state !== "failed" && retry) {
    retry.remove();
  }
}

function nearBottom() {
  const s = els.scroll;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToBottom() {
  els.scroll.scrollTop = els.scroll.scrollHeight;
}

// Put a seq'd element in order: before the first element with a higher seq or
// the first still-pending one (pending messages stay at the bottom).
function place(li, seq) {
  let before = null;
  for (let node = els.log.lastElementChild; node; node = node.previousElementSibling) {
    const other = node.dataset.seq ? Number(node.dataset.seq) : Infinity;
    if (other < seq) break;
    before = node;
  }
  els.log.insertBefore(li, before);
}

// Show or apply one event (from any source): a posted message, or a correction
// of one (chat.edit / chat.redact). Other event types only count for their seq.
function addEvent(ev) {
  if (typeof ev.seq !== "number") return false;
  if (lowestSeq === null || ev.seq < lowestSeq) lowestSeq = ev.seq;
  if (ev.type === "chat.edit" || ev.type === "chat.redact") {
    const target = bySeq.get(ev.target_seq);
    if (target) {
      if (ev.type === "chat.redact" || ev.redacted) showText(target, "", { redacted: true });
      else showText(target, ev.message, { edited: true });
    }
    return false;
  }
  if (ev.type !== "chat.message" || bySeq.has(ev.seq)) return false;
  let li = null;
  const mine = ev.client_id && ev.username === config.username && pending.get(ev.client_id);
  if (mine) {
    li = mine.el;
    pending.delete(ev.client_id);
  } else {
    li = messageElement();
  }
  li.dataset.seq = String(ev.seq);
  li.dataset.id = ev.id;
  fill(li, ev);
  if (mine) setState(li, "sent");
  bySeq.set(ev.seq, li);
  place(li, ev.seq);
  return true;
}

function oldestSeq() {
  return lowestSeq;
}

function maxSeq() {
  let max = 0;
  for (const seq of bySeq.keys()) max = Math.max(max, seq);
  return max;
}

function dropSeqs(predicate) {
  for (const [seq, li] of [...bySeq]) {
    if (predicate(seq)) {
      li.remove();
      bySeq.delete(seq);
    }
  }
}

// A presence frame lists at most CHAT_PRESENCE_LIST_MAX users; `count` is everyone.
function renderPresence(users, count) {
  const items = users.map((name) => {
    const li = document.createElement("li");
    li.textContent = name;
    if (name === config.username) li.classList.add("me");
    return li;
  });
  if (count > users.length) {
    const more = document.createElement("li");
    more.className = "more";
    more.textContent = interpolate(gettext("and %s more"), [count - users.length]);
    items.push(more);
  }
  els.presence.replaceChildren(...items);
}

function showStatus(state, text) {
  els.status.dataset.state = state;
  els.status.textContent = text;
}

function showError(text) {
  els.error.textContent = text;
  els.error.hidden = !text;
}

// ---- the socket ------------------------------------------------------------

function socketUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const since = everConnected ? lastSeq : startSince;
  const query = since !== null ? `?since=${since}` : `?history=${config.historyLimit}`;
  return `${proto}//${location.host}/ws/chat/${encodeURIComponent(config.room)}/${query}`;
}

function connect() {
  clearTimeout(reconnectTimer);
  showStatus(everConnected ? "reconnecting" : "connecting", everConnected ? gettext("Reconnecting…") : gettext("Connecting…"));
  const ws = new WebSocket(socketUrl());
  socket = ws;
  let replayed = [];
  ws.addEventListener("message", (e) => {
    if (socket !== ws) return;
    let frame;
    try {
      frame = JSON.parse(e.data);
    } catch {
      return;
    }
    switch (frame.type) {
      case "history.end":
        historyEnd(frame, replayed);
        replayed = [];
        break;
      case "ack":
        acked(frame);
        break;
      case "error":
        errored(frame);
        break;
      case "presence":
        renderPresence(frame.users || [], frame.count || 0);
        break;
      default:
        // Every event frame (chat.message, chat.edit, chat.redact, and any type the
        // server adds) carries the room's seq; frames without one are ignored.
        if (typeof frame.seq !== "number") break;
        if (frame.replay) replayed.push(frame);
        else receiveLive([frame]);
        break;
    }
  });
  ws.addEventListener("close", (e) => {
    if (socket !== ws) return;
    socket = null;
    if (e.code === 4401 || e.code === 4403 || e.code === 4400) {
      stopped = true;
      showStatus("refused", gettext("Disconnected"));
      return;
    }
    for (const { el } of pending.values()) if (el.dataset.state === "sent") setState(el, "pending");
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  if (stopped) return;
  attempts += 1;
  const delay = Math.min(10000, 500 * 2 ** (attempts - 1)) * (0.75 + Math.random() * 0.5);
  const seconds = Math.max(1, Math.round(delay / 1000));
  showStatus("disconnected", interpolate(gettext("Disconnected — reconnecting in %(seconds)s s"), { seconds }, true));
  reconnectTimer = setTimeout(connect, delay);
}

function historyEnd(end, replayed) {
  const stick = nearBottom() || (!everConnected && startSince === null);
  if (end.reset) {
    // The room's log was restored: what we showed past its head is gone.
    dropSeqs((seq) => seq > end.last_seq);
  } else if (end.truncated && replayed.length) {
    // More was missed than the server replays: keep the log contiguous, page older on scroll.
    const first = replayed[0].seq;
    dropSeqs((seq) => seq < first);
    lowestSeq = null;
  }
  for (const ev of replayed) addEvent(ev);
  // The replay reaches the head as it was read: everything up to it has been received.
  lastSeq = end.last_seq;
  if (!everConnected && startSince === null) {
    const oldest = oldestSeq();
    hasMore = oldest !== null && oldest > 1;
  } else if (end.truncated) {
    hasMore = true;
  }
  everConnected = true;
  attempts = 0;
  showStatus("connected", gettext("Connected"));
  if (stick) scrollToBottom();
  updateTop();
  // Messages not yet acknowledged go again with the same client_id: the server
  // makes the resend idempotent.
  for (const clientId of pending.keys()) sendPending(clientId);
  scheduleRead();
  fillViewport();
}

function receiveLive(frames) {
  const stick = nearBottom();
  for (const ev of frames) {
    if (ev.seq > lastSeq) lastSeq = ev.seq;
    addEvent(ev);
  }
  if (stick) scrollToBottom();
  updateTop();
  scheduleRead();
}

function acked(ack) {
  const entry = ack.client_id && pending.get(ack.client_id);
  if (!entry) return;
  pending.delete(ack.client_id);
  const li = entry.el;
  setState(li, "sent");
  if (!bySeq.has(ack.seq)) {
    li.dataset.seq = String(ack.seq);
    li.dataset.id = ack.id;
    bySeq.set(ack.seq, li);
    place(li, ack.seq);
  } else if (bySeq.get(ack.seq) !== li) {
    li.remove(); // the event frame already showed it
  }
  if (pending.size === 0) showError("");
}

function errored(err) {
  const text = gettext(ERROR_TEXT[err.code] || gettext_noop("The server refused the request."));
  const entry = err.client_id && pending.get(err.client_id);
  if (entry) {
    setState(entry.el, "failed");
    // Keep the text: back in the input if it is empty, and the retry button resends it as is.
    if (!els.input.value) {
      els.input.value = entry.text;
    }
  }
  showError(text);
}

function sendPending(clientId) {
  const entry = pending.get(clientId);
  if (!entry || !socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify({ type: "chat.message", message: entry.text, client_id: clientId }));
  return true;
}

function submit() {
  const text = els.input.value;
  if (!text.trim()) return;
  // Resending a failed message: the same text keeps its client_id.
  for (const [clientId, entry] of pending) {
    if (entry.el.dataset.state === "failed" && entry.text === text) {
      els.input.value = "";
      setState(entry.el, "pending");
      sendPending(clientId);
      return;
    }
  }
  const clientId = crypto.randomUUID();
  const li = messageElement();
  li.dataset.clientId = clientId;
  fill(li, { username: config.username, message: text, ts: new Date().toISOString() });
  setState(li, "pending");
  els.log.append(li);
  pending.set(clientId, { text, el: li });
  els.input.value = "";
  fitInput();
  showError("");
  updateTop();
  scrollToBottom();
  sendPending(clientId); // when offline it goes on reconnect
}

// ---- read marker -----------------------------------------------------------

function scheduleRead() {
  clearTimeout(readTimer);
  readTimer = setTimeout(sendRead, 800);
}

function sendRead() {
  const seq = maxSeq();
  if (document.visibilityState !== "visible" || seq <= readSent) return;
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ type: "read", seq }));
  readSent = seq;
}

// ---- scrollback ------------------------------------------------------------

function updateTop() {
  if (els.log.childElementCount === 0 && !hasMore) {
    els.top.textContent = gettext("No messages yet. Say hello!");
    els.top.hidden = false;
  } else if (!hasMore) {
    els.top.textContent = gettext("This is the beginning of the room.");
    els.top.hidden = false;
  } else if (loadingOlder) {
    els.top.textContent = gettext("Loading older messages…");
    els.top.hidden = false;
  } else {
    els.top.hidden = true;
  }
}

async function loadOlder() {
  const before = oldestSeq();
  if (loadingOlder || !hasMore || before === null) return;
  loadingOlder = true;
  updateTop();
  try {
    const url = `${config.eventsUrl}?before=${before}&limit=${config.pageSize}`;
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const page = await response.json();
    const s = els.scroll;
    const fromBottom = s.scrollHeight - s.scrollTop;
    // Oldest first within the page: a correction's target, if on the page, comes before it.
    for (const ev of page.events) addEvent({ type: "chat.message", ...ev });
    s.scrollTop = s.scrollHeight - fromBottom; // keep what the reader was looking at in place
    hasMore = page.has_more;
  } catch {
    showError(gettext("Older messages could not be loaded."));
  } finally {
    loadingOlder = false;
    updateTop();
  }
  fillViewport();
}

// Without a scrollbar there is no scroll-up: load until there is one or nothing is left.
function fillViewport() {
  if (els.scroll.scrollHeight > els.scroll.clientHeight) return;
  if (hasMore && !loadingOlder) loadOlder();
  else if (hasNewer && !loadingNewer) loadNewer();
}

// ---- permalinks ------------------------------------------------------------

async function fetchPage(query) {
  const response = await fetch(`${config.eventsUrl}?${query}&limit=${config.pageSize}`, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  const page = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(String(response.status)), { code: page.error });
  for (const ev of page.events) highestLoaded = Math.max(highestLoaded, ev.seq);
  return page;
}

async function openAt(seq) {
  startSince = 0;
  els.latest.hidden = false;
  showStatus("connecting", gettext("Loading…"));
  let page;
  try {
    page = await fetchPage(`around=${seq}`);
  } catch (err) {
    showStatus("refused", gettext("Disconnected"));
    showError(err.code === "not_found" ? gettext("This message does not exist.") : gettext("Older messages could not be loaded."));
    return;
  }
  for (const ev of page.events) addEvent({ type: "chat.message", ...ev });
  hasMore = page.has_more;
  hasNewer = page.has_newer;
  const target = bySeq.get(seq);
  if (target) {
    target.classList.add("msg-target");
    target.setAttribute("aria-current", "true");
    target.scrollIntoView({ block: "center" });
  }
  updateTop();
  if (!hasNewer) goLive();
  else showStatus("history", gettext("Viewing older messages"));
  fillViewport();
}

async function loadNewer() {
  if (loadingNewer || !hasNewer) return;
  loadingNewer = true;
  try {
    const page = await fetchPage(`after=${highestLoaded}`);
    for (const ev of page.events) addEvent({ type: "chat.message", ...ev });
    hasNewer = page.has_newer;
  } catch {
    showError(gettext("Newer messages could not be loaded."));
  } finally {
    loadingNewer = false;
  }
  if (!hasNewer) goLive();
  fillViewport();
}

// The newest page reached the head: resume live from there, like a reconnect.
function goLive() {
  startSince = highestLoaded;
  els.latest.hidden = true;
  connect();
}

// ---- wiring ----------------------------------------------------------------

els.scroll.addEventListener("scroll", () => {
  if (els.scroll.scrollTop < 60) loadOlder();
  if (hasNewer && nearBottom()) loadNewer();
});
els.form.addEventListener("submit", (e) => {
  e.preventDefault();
  submit();
});
els.input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  }
});
// The box grows with its text, up to the CSS max-height.
const fitInput = () => {
  els.input.style.height = "auto";
  els.input.style.height = `${els.input.scrollHeight + 2}px`;
};
els.input.addEventListener("input", fitInput);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") scheduleRead();
});
window.addEventListener("online", () => {
  if (!socket && !stopped && startSince !== 0) connect();
});

if (config.at) openAt(config.at);
else connect();
