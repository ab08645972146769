/* Switchboard chat widget: <script src="https://switchboard.example/widget.js" data-key="KEY"></script>
 * A bubble and a panel; the visitor's token stays in localStorage; replies arrive over server-sent events
 * (EventSource reconnects by itself and names the last event it had, so nothing is missed or doubled). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__switchboardWidget) return;
  window.__switchboardWidget = true;
  var key = script.getAttribute("data-key") || "";
  var base = new URL(script.src, location.href).origin;
  var store = "switchboard-widget:" + key;
  var state = { token: null, shown: {}, pending: {}, open: false, source: null, last: 0, unread: [] };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) node.textContent = text;
    return node;
  }
  function remember(token) {
    state.token = token;
    try { localStorage.setItem(store, token); } catch (e) { /* private mode: this page only */ }
  }
  function recalled() {
    try { return localStorage.getItem(store); } catch (e) { return null; }
  }
  function newId() {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  // The answer's JSON, or an Error with the server's words and the status.
  function answered(response) {
    return response.json().catch(function () { return {}; }).then(function (data) {
      if (!response.ok) {
        var error = new Error(data.error || "Something went wrong (" + response.status + ").");
        error.status = response.status;
        throw error;
      }
      return data;
    });
  }
  // The visitor's own zone and language: the first time they write, their record is placed by them.
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (ignored) { zone = ""; }
  // text/plain keeps the request "simple": no CORS preflight from the clinic's pages.
  function call(path, body) {
    return fetch(base + path, {
      method: "POST", headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify(Object.assign({ key: key, token: state.token, zone: zone, lang: navigator.language }, body)),
    }).then(answered);
  }

  var style = el("style");
  style.textContent =
    ".sbw-bubble{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:#0f4c5c;color:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}" +
    ".sbw-panel{position:fixed;right:20px;bottom:88px;width:340px;max-width:calc(100vw - 40px);height:460px;" +
    "max-height:calc(100vh - 110px);display:none;flex-direction:column;background:#fff;border-radius:12px;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.25);font:14px/1.4 system-ui,sans-serif;color:#1d2733;z-index:2147483000;overflow:hidden}" +
    ".sbw-panel.sbw-open{display:flex}.sbw-head{background:#0f4c5c;color:#fff;padding:12px 14px;font-weight:600}" +
    ".sbw-head small{display:block;font-weight:400;opacity:.85}" +
    ".sbw-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;margin:0;list-style:none}" +
    ".sbw-turn{max-width:80%;padding:7px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
    ".sbw-mine{align-self:flex-end;background:#d8eef2}.sbw-theirs{align-self:flex-start;background:#f0f1f3}" +
    ".sbw-waiting{opacity:.6}.sbw-form{display:flex;flex-direction:column;gap:6px;padding:10px;border-top:1px solid #e3e6ea}" +
    ".sbw-form textarea,.sbw-form input{font:inherit;padding:6px 8px;border:1px solid #c4cad1;border-radius:6px}" +
    ".sbw-form button{font:inherit;padding:7px;border:0;border-radius:6px;background:#0f4c5c;color:#fff;cursor:pointer}" +
    ".sbw-note{font-size:12px;color:#5b6673;margin:0}.sbw-error{color:#a4262c}" +
    ".sbw-attach{font-size:12px;color:#0f4c5c;cursor:pointer}.sbw-attach input{display:block;font-size:12px;margin-top:2px}";
  document.head.appendChild(style);

  var bubble = el("button", { type: "button", class: "sbw-bubble", "aria-label": "Chat with us", "aria-expanded": "false" });
  // A speech bubble drawn in SVG: emoji fonts are not on every machine.
  bubble.innerHTML = '<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path fill="currentColor" ' +
    'd="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';
  var panel = el("section", { class: "sbw-panel", role: "dialog", "aria-label": "Chat" });
  var head = el("div", { class: "sbw-head" }, "Chat with us");
  var status = el("small", {}, "");
  head.appendChild(status);
  var log = el("ol", { class: "sbw-log", "aria-live": "polite" });
  var compose = el("form", { class: "sbw-form", "aria-label": "Write to us" });
  var text = el("textarea", { rows: "2", maxlength: "4000", "aria-label": "Your message", placeholder: "Write a message…" });
  var send = el("button", { type: "submit" }, "Send");
  var problem = el("p", { class: "sbw-note sbw-error", role: "alert" });
  // An image or PDF: the raw bytes as a text/plain body (a "simple" request again), checked by the server.
  var attach = el("label", { class: "sbw-attach" }, "Attach an image or PDF");
  var picker = el("input", { type: "file", accept: "image/*,application/pdf", "aria-label": "Attach an image or PDF" });
  attach.appendChild(picker);
  compose.append(text, attach, send, problem);
  var offline = el("form", { class: "sbw-form", "aria-label": "Leave us a message" });
  var offlineNote = el("p", { class: "sbw-note" }, "Nobody is online right now. Leave a message and we will answer you here and by email.");
  var offName = el("input", { "aria-label": "Your name", placeholder: "Your name", maxlength: "200", required: "" });
  var offEmail = el("input", { type: "email", "aria-label": "Your email", placeholder: "Your email", maxlength: "254", required: "" });
  var offText = el("textarea", { rows: "3", maxlength: "4000", "aria-label": "Your message", placeholder: "Your message", required: "" });
  var offProblem = el("p", { class: "sbw-note sbw-error", role: "alert" });
  offline.append(offlineNote, offName, offEmail, offText, el("button", { type: "submit" }, "Send message"), offProblem);
  offline.style.display = "none";  // until the opening says nobody is online (setOnline)
  panel.append(head, log, compose, offline);
  document.body.append(panel, bubble);

  function show(turn) {
    if (state.shown[turn.id]) return;
    state.shown[turn.id] = true;
    var waiting = turn.client_id && state.pending[turn.client_id];
    if (waiting) {
      waiting.classList.remove("sbw-waiting");
      delete state.pending[turn.client_id];
    } else {
      log.appendChild(el("li", { class: "sbw-turn " + (turn.mine ? "sbw-mine" : "sbw-theirs"), "data-id": String(turn.id) }, turn.body));
      log.scrollTop = log.scrollHeight;
    }
    if (!turn.mine) {
      call("/widget/receipts", { delivered: [turn.id] }).catch(function () {});
      state.unread.push(turn.id);
      markRead();
    }
  }
  function markRead() {
    if (!state.open || document.visibilityState !== "visible" || !state.unread.length) return;
    var ids = state.unread.splice(0);
    call("/widget/receipts", { read: ids }).catch(function () {});
  }
  function listen(after) {
    if (state.source) state.source.close();
    var url = base + "/widget/events?key=" + encodeURIComponent(key) + "&token=" + encodeURIComponent(state.token) + "&after=" + after;
    var source = new EventSource(url);
    state.source = source;
    source.addEventListener("turn", function (event) {
      var turn = JSON.parse(event.data);
      state.last = Math.max(state.last, turn.id);
      show(turn);
    });
    source.onerror = function () {
      // The browser retries by itself (with Last-Event-ID); only a refused stream is closed for good.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(function () { if (state.source === source) listen(state.last); }, 5000);
      }
    };
  }
  function setOnline(online) {
    status.textContent = online ? "We usually answer in a few minutes." : "We are offline — leave a message.";
    compose.style.display = online ? "flex" : "none";
    offline.style.display = online ? "none" : "flex";
  }
  function start() {
    return call("/widget/session", { token: recalled() }).then(function (data) {
      remember(data.token);
      head.firstChild.textContent = data.business || "Chat with us";
      setOnline(data.online);
      if (data.visitor && data.visitor.name !== "Website visitor") offName.value = data.visitor.name;
      if (data.visitor && data.visitor.email) offEmail.value = data.visitor.email;
      data.turns.forEach(function (turn) { state.last = Math.max(state.last, turn.id); show(turn); });
      listen(data.position);
    });
  }
  var started = null;
  // The conversation is opened once; a failed opening is tried again by the next click or message.
  function ensureStarted() {
    if (!started) started = start().catch(function (error) { started = null; throw error; });
    return started;
  }
  bubble.addEventListener("click", function () {
    state.open = !state.open;
    panel.classList.toggle("sbw-open", state.open);
    bubble.setAttribute("aria-expanded", String(state.open));
    ensureStarted().catch(function (error) { problem.textContent = error.message; setOnline(true); });
    if (state.open) { markRead(); text.focus(); }
  });
  document.addEventListener("visibilitychange", markRead);

  // A message written while the conversation is still being opened waits for it (and its token); if opening
  // failed, it is tried again first, and the message is kept in the box with the reason when it fails again.
  function afterStart(send) {
    return ensureStarted().then(send);
  }
  function deliver(path, body, tries) {
    return call(path, body).catch(function (error) {
      // A lost answer is retried with the same id: the message is stored once however often it is sent.
      if (!error.status && tries > 1) {
        return new Promise(function (resolve) { setTimeout(resolve, 1500); }).then(function () { return deliver(path, body, tries - 1); });
      }
      throw error;
    });
  }
  compose.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = text.value.trim();
    if (!body) return;
    var id = newId();
    var bubbleText = el("li", { class: "sbw-turn sbw-mine sbw-waiting" }, body);
    state.pending[id] = bubbleText;
    log.appendChild(bubbleText);
    log.scrollTop = log.scrollHeight;
    text.value = "";
    problem.textContent = "";
    afterStart(function () { return deliver("/widget/messages", { id: id, text: body }, 3); }).then(function (data) {
      if (data.id && !state.shown[data.id]) { state.shown[data.id] = true; bubbleText.classList.remove("sbw-waiting"); delete state.pending[id]; }
    }).catch(function (error) {
      bubbleText.remove();
      delete state.pending[id];
      text.value = body;
      problem.textContent = error.message;
    });
  });
  function upload(file, words, id, tries) {
    var url = base + "/widget/files?key=" + encodeURIComponent(key) + "&token=" + encodeURIComponent(state.token || "") +
      "&id=" + id + "&name=" + encodeURIComponent(file.name) + "&text=" + encodeURIComponent(words);
    return fetch(url, { method: "POST", headers: { "Content-Type": "text/plain" }, body: file }).then(answered).catch(function (error) {
      if (!error.status && tries > 1) {
        return new Promise(function (resolve) { setTimeout(resolve, 1500); }).then(function () { return upload(file, words, id, tries - 1); });
      }
      throw error;
    });
  }
  picker.addEventListener("change", function () {
    var file = picker.files && picker.files[0];
    if (!file) return;
    var words = text.value.trim();
    var id = newId();
    // What the conversation keeps: the words, or "[file: name]" for a file on its own.
    var shown = el("li", { class: "sbw-turn sbw-mine sbw-waiting" }, words || "[file: " + file.name + "]");
    state.pending[id] = shown;
    log.appendChild(shown);
    log.scrollTop = log.scrollHeight;
    text.value = "";
    problem.textContent = "";
    afterStart(function () { return upload(file, words, id, 3); }).then(function (data) {
      if (data.id && !state.shown[data.id]) { state.shown[data.id] = true; shown.classList.remove("sbw-waiting"); delete state.pending[id]; }
    }).catch(function (error) {
      shown.remove();
      delete state.pending[id];
      text.value = words;
      problem.textContent = error.message;
    }).then(function () { picker.value = ""; });
  });
  compose.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); compose.requestSubmit(); }
  });
  offline.addEventListener("submit", function (event) {
    event.preventDefault();
    offProblem.textContent = "";
    var body = offText.value.trim();
    var id = newId();
    var button = offline.querySelector("button[type=submit]");
    if (button) button.disabled = true;  // one message, however often it is clicked while it goes
    afterStart(function () { return deliver("/widget/offline", { id: id, text: body, name: offName.value, email: offEmail.value }, 3); }).then(function (data) {
      if (data.token && data.token !== state.token) { remember(data.token); listen(0); }
      if (data.id) state.shown[data.id] = true;
      log.appendChild(el("li", { class: "sbw-turn sbw-mine" }, body));
      offText.value = "";
      offlineNote.textContent = "Thank you — we have your message and will answer as soon as we are back.";
    }).catch(function (error) { offProblem.textContent = error.message; }).then(function () {
      if (button) button.disabled = false;
    });
  });
})();
