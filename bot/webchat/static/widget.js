/* SCORE assistant: website chat widget. Embed with one tag:
 *   <script src="https://chat.example.org/widget.js" defer></script>
 * Plain JavaScript, no build step. It talks to the server it was loaded from, over a WebSocket.
 * Nothing secret is in the page: the visitor id is a random UUID kept in localStorage. */
(function () {
  "use strict";
  if (window.__scoreWebchat) return; // one widget per page
  window.__scoreWebchat = true;

  var STRINGS = /*STRINGS*/{};
  var script = document.currentScript;
  var base = new URL(script ? script.src : "/widget.js", location.href);
  var wsUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/ws";
  var VISITOR_KEY = "score-webchat-visitor";
  var OPEN_KEY = "score-webchat-open";
  var PENDING_KEY = "score-webchat-pending"; // frames sent but not acknowledged: sent again after a reconnect

  function randomId() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
      : Array.from(crypto.getRandomValues(new Uint8Array(16)), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function visitorId() {
    var id = null;
    try { id = localStorage.getItem(VISITOR_KEY); } catch (e) { /* storage blocked */ }
    if (!id || !/^[A-Za-z0-9-]{16,64}$/.test(id)) {
      id = randomId();
      try { localStorage.setItem(VISITOR_KEY, id); } catch (e) { /* a visitor without storage starts afresh */ }
    }
    return id;
  }

  var language = (navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  function s(key) { return (STRINGS[language] || STRINGS.en || {})[key] || key; }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text; // always text: never markup from the server
    return node;
  }

  // --- the widget, in a shadow root so the host page's styles do not reach it ---
  var host = el("div", { id: "score-webchat" });
  document.body.appendChild(host);
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("link", { rel: "stylesheet", href: new URL("/widget.css", base).href }));

  var launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "panel" });
  var panel = el("section", { class: "panel", id: "panel", role: "dialog", "aria-modal": "false", hidden: "" });
  var header = el("header", { class: "header" });
  var title = el("h2", { class: "title", id: "title" });
  var status = el("p", { class: "status", role: "status" });
  var close = el("button", { class: "close", type: "button" }, "×");
  var log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
  var typing = el("p", { class: "typing", role: "status", hidden: "" });
  var chips = el("div", { class: "chips", role: "group" });
  var form = el("form", { class: "composer" });
  var label = el("label", { class: "visually-hidden", for: "input" });
  var input = el("textarea", { id: "input", rows: "1", maxlength: "4000", autocomplete: "off" });
  var send = el("button", { class: "send", type: "submit" });
  header.append(title, status, close);
  form.append(label, input, send);
  panel.append(header, log, typing, chips, form);
  panel.setAttribute("aria-labelledby", "title");
  root.append(launcher, panel);

  function label_all() {
    launcher.textContent = s("open");
    launcher.setAttribute("aria-label", s("open"));
    title.textContent = s("title");
    close.setAttribute("aria-label", s("close"));
    log.setAttribute("aria-label", s("log_label"));
    chips.setAttribute("aria-label", s("chips_label"));
    label.textContent = s("input_label");
    input.setAttribute("placeholder", s("placeholder"));
    send.textContent = s("send");
    typing.textContent = s("typing");
    status.textContent = s(statusKey);
    Array.prototype.forEach.call(log.querySelectorAll(".line.pending .mark"), function (mark) { mark.textContent = s("pending"); });
    panel.setAttribute("lang", language === "zh" ? "zh-Hans" : "en");
  }
  function setLanguage(lang) {
    if ((lang === "en" || lang === "zh") && lang !== language) {
      language = lang;
      label_all();
      Array.prototype.forEach.call(log.querySelectorAll(".who"), function (who) { who.textContent = whoName(who.dataset.who, who.dataset.staff); });
    }
  }

  var statusKey = "connecting";
  function setStatus(key) { statusKey = key; status.textContent = s(key); status.dataset.state = key; }

  function whoName(who, staffName) {
    return who === "user" ? s("you") : who === "staff" ? (s("staff") + (staffName ? " · " + staffName : "")) : s("bot");
  }

  function addLine(who, text, staffName) {
    var item = el("li", { class: "line " + who });
    var name = el("span", { class: "who", "data-who": who, "data-staff": staffName || "" }, whoName(who, staffName));
    item.append(name, el("p", { class: "text" }, text));
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  // A line of the visitor's not yet acknowledged by the server: marked "Sending…" until it is.
  function addPendingLine(item) {
    var line = addLine("user", item.shown);
    line.classList.add("pending");
    line.dataset.frame = item.id;
    line.appendChild(el("span", { class: "mark" }, s("pending")));
    return line;
  }
  function pendingLine(id) {
    return Array.prototype.find.call(log.querySelectorAll(".line.pending"), function (line) { return line.dataset.frame === id; });
  }

  function showChips(buttons, pressable) {
    chips.textContent = "";
    (buttons || []).forEach(function (b) {
      var chip = el("button", { class: "chip", type: "button" }, b.title);
      if (pressable) {
        chip.addEventListener("click", function () { press(b.title, b.payload); });
      } else {
        chip.disabled = true; // from the history: its payload is not kept
      }
      chips.appendChild(chip);
    });
  }

  function showTyping(on) { typing.hidden = !on; if (on) log.scrollTop = log.scrollHeight; }

  // --- the connection: reconnects with backoff after a drop ---
  // Delivery is at least once: every frame the visitor sends carries a random id and stays in
  // `pending` (and localStorage, so a reload keeps it) until the server acknowledges that id;
  // after each (re)connect, the pending frames are sent again. The server answers an id once.
  var socket = null, attempts = 0, timer = null;
  var pending = loadPending();

  function loadPending() {
    try {
      var items = JSON.parse(localStorage.getItem(PENDING_KEY) || "[]");
      return Array.isArray(items) ? items.filter(function (i) { return i && i.id && i.frame; }) : [];
    } catch (e) { return []; }
  }
  function savePending() {
    try { localStorage.setItem(PENDING_KEY, JSON.stringify(pending)); } catch (e) { /* kept for this page only */ }
  }

  function connect() {
    clearTimeout(timer);
    timer = null;
    setStatus(attempts ? "reconnecting" : "connecting");
    try { socket = new WebSocket(wsUrl); } catch (e) { return retry(); }
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "hello", visitor: visitorId(), language: navigator.language || "" }));
    };
    socket.onmessage = function (event) {
      var first = attempts !== 0 || statusKey !== "online";
      attempts = 0;
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      receive(message);
      if (first) {
        setStatus("online");
        // after this first frame (the history or the welcome): what is not acknowledged yet
        pending.forEach(function (item) { socket.send(JSON.stringify(item.frame)); });
        if (pending.length) showTyping(true);
      }
    };
    socket.onclose = function () { socket = null; showTyping(false); retry(); };
  }

  function retry() {
    attempts += 1;
    setStatus("reconnecting");
    var delay = Math.min(30000, 1000 * Math.pow(2, attempts - 1)) * (0.5 + Math.random() / 2);
    timer = setTimeout(connect, delay);
  }

  window.addEventListener("online", function () { if (!socket) { attempts = Math.max(attempts, 1); connect(); } });

  function acknowledge(id, dropLine) {
    var before = pending.length;
    pending = pending.filter(function (item) { return item.id !== id; });
    if (pending.length !== before) savePending();
    var line = pendingLine(id);
    if (!line) return;
    if (dropLine) { // in the history this connection was shown (or refused for speed: the text is back in the box)
      line.remove();
    } else {
      line.classList.remove("pending");
      var mark = line.querySelector(".mark");
      if (mark) mark.remove();
    }
  }

  function receive(message) {
    if (message.language) setLanguage(message.language);
    // Refused for speed: not taken, so the line goes (its text is put back in the box).
    if (message.ack) acknowledge(message.ack, message.key === "webchat_slow_down");
    if (message.type === "ack") {
      acknowledge(message.id, message.in_history);
      if (!pending.length) showTyping(false);
    } else if (message.type === "history") {
      log.textContent = "";
      var last = null;
      message.lines.forEach(function (line) { addLine(line.from, line.text, line.staff_name); last = line; });
      pending.forEach(addPendingLine); // not acknowledged yet: about to be sent again
      showChips(last && last.from === "bot" ? last.buttons.map(function (t) { return { title: t }; }) : [], false);
      showTyping(false);
    } else if (message.type === "typing") {
      showTyping(true);
    } else if (message.type === "replies") {
      if (message.welcome && log.querySelector(".line.bot")) return; // a reconnect before the first message
      showTyping(false);
      var buttons = [];
      message.replies.forEach(function (reply) {
        if (reply.text) addLine("bot", reply.text);
        buttons = reply.buttons;
      });
      showChips(buttons, true);
    } else if (message.type === "push") {
      addLine(message.from, message.text, message.staff_name);
      showChips(message.buttons, true);
    } else if (message.type === "notice") {
      showTyping(false);
      addLine("notice", message.text);
      if (message.retry && !input.value) input.value = message.retry; // nothing typed is lost
    }
  }

  function deliver(frame, shown) {
    var item = { id: randomId(), frame: frame, shown: shown };
    frame.id = item.id;
    pending.push(item);
    savePending();
    addPendingLine(item);
    if (socket && socket.readyState === 1 && statusKey === "online") {
      socket.send(JSON.stringify(frame));
      showTyping(true);
    } else {
      addLine("notice", s("queued"));
    }
  }

  function say(text) {
    text = text.trim();
    if (!text) return;
    showChips([], false);
    deliver({ type: "message", text: text }, text);
  }

  function press(title, payload) {
    showChips([], false);
    deliver({ type: "press", payload: payload, title: title }, title);
    input.focus();
  }

  // --- opening, closing, keyboard ---
  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    host.classList.toggle("open", open);
    launcher.hidden = open;
    try { sessionStorage.setItem(OPEN_KEY, open ? "1" : ""); } catch (e) { /* ignore */ }
    if (open) {
      if (!socket && !timer) connect();
      input.focus();
    } else {
      launcher.focus();
    }
  }
  launcher.addEventListener("click", function () { setOpen(true); });
  close.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") setOpen(false); });
  form.addEventListener("submit", function (event) { event.preventDefault(); say(input.value); input.value = ""; });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { // isComposing: Chinese IME
      event.preventDefault();
      form.requestSubmit();
    }
  });

  label_all();
  pending.forEach(addPendingLine); // from before a reload: shown until the history replaces the log
  var wasOpen = false;
  try { wasOpen = sessionStorage.getItem(OPEN_KEY) === "1"; } catch (e) { /* ignore */ }
  if (wasOpen || (script && script.dataset.open === "true")) setOpen(true);
})();
