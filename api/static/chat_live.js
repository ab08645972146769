// Live updates for the chat inbox: the queue pages and a conversation follow server-sent events.
// Every value from the server is put in with textContent, never parsed as HTML. Without this script the
// pages work as before (reload to see what is new).
(function () {
  "use strict";

  var marker = document.getElementById("live-marker");
  var baseTitle = document.title;

  function showMarker(text) {
    if (!marker) return;
    marker.textContent = text;
    marker.hidden = false;
    if (document.hidden) document.title = "(new) " + baseTitle;
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) document.title = baseTitle;
  });
  if (marker) {
    marker.addEventListener("click", function () { marker.hidden = true; });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function statusPill(status, text) {
    // Status words come from a fixed list; keep only letters, digits, - and _ in the class.
    return element("span", "status status-" + String(status).replace(/[^a-z0-9_-]/gi, ""), text);
  }

  // --- a conversation -------------------------------------------------------------------------------------
  function followConversation(timeline) {
    var source = new EventSource(timeline.getAttribute("data-live-events"));

    // The files a customer sent: a thumbnail for an image, a download link for a PDF (our own URLs only).
    function files(list) {
      var box = element("ul", "attachments");
      list.forEach(function (file) {
        var url = String(file.url);
        if (!/^\/communication\/chat\/attachments\/\d+$/.test(url)) return;
        var entry = element("li");
        if (file.is_image) {
          var image = element("img", "thumbnail");
          image.src = url;
          image.alt = String(file.name);
          var opener = element("a");
          opener.href = url;
          opener.appendChild(image);
          entry.appendChild(opener);
          entry.appendChild(element("br"));
        }
        var link = element("a", "", String(file.label));
        link.href = url;
        if (!file.is_image) link.setAttribute("download", "");
        entry.appendChild(document.createTextNode("📎 "));
        entry.appendChild(link);
        box.appendChild(entry);
      });
      return box;
    }

    function delivery(turn) {
      var line = element("span", "delivery");
      line.appendChild(statusPill(turn.delivery_status, turn.delivery));
      if (turn.delivery_why) line.appendChild(document.createTextNode(" " + turn.delivery_why));
      return line;
    }

    source.addEventListener("turn", function (event) {
      var turn = JSON.parse(event.data);
      if (timeline.querySelector('[data-turn-id="' + Number(turn.id) + '"]')) return;
      var empty = timeline.querySelector("li.empty");
      if (empty) empty.remove();
      var item = element("li", turn.is_note ? "note live-new" : (turn.from_customer ? "from-customer live-new" : "from-us live-new"));
      item.setAttribute("data-turn-id", String(Number(turn.id)));
      var who = element("span", "who-said");
      if (turn.is_note) {
        who.appendChild(element("strong", "", "Internal note"));
        who.appendChild(document.createTextNode(" · " + turn.author + " · " + turn.when));
      } else {
        who.textContent = turn.author + " · " + turn.when;
      }
      item.appendChild(who);
      item.appendChild(element("div", "bubble", turn.body));
      if (turn.files && turn.files.length) item.appendChild(files(turn.files));
      if (turn.delivery && !turn.is_note) item.appendChild(delivery(turn));
      timeline.appendChild(item);
      if (turn.from_customer) showMarker("New message from " + turn.author + ".");
    });

    source.addEventListener("delivery", function (event) {
      var turn = JSON.parse(event.data);
      var item = timeline.querySelector('[data-turn-id="' + Number(turn.id) + '"]');
      if (!item || !turn.delivery) return;
      var old = item.querySelector(".delivery");
      if (old) old.replaceWith(delivery(turn)); else item.appendChild(delivery(turn));
    });

    source.addEventListener("state", function (event) {
      var state = JSON.parse(event.data);
      if (state.gone) { source.close(); return; }
      var status = document.querySelector("[data-live-status]");
      if (status) {
        var pill = statusPill(state.status, state.status_label);
        pill.setAttribute("data-live-status", "");
        status.replaceWith(pill);
      }
      var agent = document.querySelector("[data-live-desk] > strong");
      if (agent) agent.textContent = state.agent;
      var snoozed = document.querySelector("[data-live-snoozed]");
      if (snoozed) snoozed.textContent = state.snoozed_until ? " · snoozed until " + state.snoozed_until : "";
      var resolved = document.querySelector("[data-live-resolved]");
      if (resolved) resolved.textContent = state.resolved ? " · resolved" : "";
      document.querySelectorAll("[data-live-when]").forEach(function (form) {
        var when = form.getAttribute("data-live-when");
        var shown = when === "resolved" ? Boolean(state.resolved)
          : when === "snoozed" ? !state.resolved && Boolean(state.snoozed_until)
          : !state.resolved;
        form.hidden = !shown || (form.hasAttribute("data-live-hide-mine") && Boolean(state.mine));
      });
    });
  }

  // --- a queue --------------------------------------------------------------------------------------------
  function followQueue(tabs) {
    var table = document.querySelector("table[data-live-queue]");
    var empty = document.querySelector("[data-live-empty]");
    var known = {};
    if (table) {
      table.querySelectorAll("tr[data-chat-id]").forEach(function (row) {
        known[row.getAttribute("data-chat-id")] = true;
      });
    }
    var source = new EventSource(tabs.getAttribute("data-live-queue-events"));

    function row(data) {
      var tr = element("tr");
      var id = String(Number(data.id));
      tr.setAttribute("data-chat-id", id);
      data.cells.forEach(function (cell, index) {
        var td = element("td");
        if (index < 2) {
          var link = element("a", "", cell.text);
          link.href = "/communication/chat/" + id;
          td.appendChild(link);
        } else if (cell.status !== undefined) {
          td.appendChild(statusPill(cell.status, cell.text));
          if (cell.tail) td.appendChild(document.createTextNode(cell.tail));
        } else {
          td.textContent = cell.text;
        }
        tr.appendChild(td);
      });
      if (!known[id]) tr.className = "live-new";
      return tr;
    }

    source.addEventListener("queue", function (event) {
      var data = JSON.parse(event.data);
      Object.keys(data.counts).forEach(function (view) {
        var count = tabs.querySelector('[data-live-view="' + view.replace(/[^a-z]/g, "") + '"] .count');
        if (count) count.textContent = String(data.counts[view]);
      });
      if (!table) return;
      var fresh = 0;
      var body = table.tBodies[0];
      var rows = data.rows.map(function (item) {
        if (!known[String(Number(item.id))]) fresh += 1;
        return row(item);
      });
      body.replaceChildren.apply(body, rows);
      known = {};
      data.rows.forEach(function (item) { known[String(Number(item.id))] = true; });
      table.hidden = rows.length === 0;
      if (empty) empty.hidden = rows.length !== 0;
      if (fresh) showMarker(fresh === 1 ? "1 new conversation." : fresh + " new conversations.");
    });
  }

  var timeline = document.querySelector("[data-live-events]");
  if (timeline && window.EventSource) followConversation(timeline);
  var tabs = document.querySelector("[data-live-queue-events]");
  if (tabs && window.EventSource) followQueue(tabs);
})();
