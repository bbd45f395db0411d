// boxhook dashboard: re-renders the server's page from /summary.json every
// 5 s. Every value is set with textContent, never parsed as HTML.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var refreshed = 0;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function num(key, value) {
    var e = el("span", value || 0, "n");
    e.setAttribute("data-k", key);
    return e;
  }
  function setNum(key, value) {
    var nodes = document.querySelectorAll("[data-k]");
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].getAttribute("data-k") === key) nodes[i].textContent = String(value || 0);
    }
  }
  function row(cells) {
    var tr = el("tr");
    cells.forEach(function (c) {
      var td = el("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = String(c);
      tr.appendChild(td);
    });
    return tr;
  }
  function fill(tbodySelector, rows, columns, emptyText) {
    var tbody = document.querySelector(tbodySelector);
    if (!tbody) return;
    tbody.textContent = "";
    if (rows.length === 0) {
      var td = el("td", emptyText, "empty");
      td.colSpan = columns;
      var tr = el("tr");
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    rows.forEach(function (r) { tbody.appendChild(r); });
  }
  function chart(minutes) {
    var top = 1;
    minutes.forEach(function (m) { top = Math.max(top, m.accepted, m.rejected); });
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + minutes.length * 10 + " 100");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "deliveries per minute");
    minutes.forEach(function (m, i) {
      [[1, "accepted", "ok"], [5, "rejected", "bad"]].forEach(function (b) {
        var value = m[b[1]];
        if (!value) return;
        var h = Math.floor(value * 96 / top);
        var r = document.createElementNS(SVG, "rect");
        r.setAttribute("class", b[2]);
        r.setAttribute("x", i * 10 + b[0]);
        r.setAttribute("y", 100 - h);
        r.setAttribute("width", 4);
        r.setAttribute("height", h);
        var t = document.createElementNS(SVG, "title");
        t.textContent = value + " " + b[1];
        r.appendChild(t);
        svg.appendChild(r);
      });
    });
    var box = document.getElementById("chart");
    box.textContent = "";
    box.appendChild(svg);
  }
  function render(s) {
    document.getElementById("now").textContent = s.now;
    if (s.role !== "work") renderDeliveries(s);
    renderInbox(s);
    renderRetention(s);
  }
  function renderCertificates(s) {
    var ul = document.getElementById("cert-alerts");
    if (!ul) return;
    ul.textContent = "";
    var warns = false;
    s.certificates.forEach(function (c) {
      if (!c.message) return;
      warns = true;
      var li = el("li", c.message, c.level);
      li.setAttribute("data-level", c.level);
      ul.appendChild(li);
    });
    document.getElementById("certificates").className = warns ? "card wide urgent" : "card";
    fill("#certs tbody", s.certificates.map(function (c) {
      return row([c.domain, c.expires_at || "", c.days_left]);
    }), 3, "none: plain HTTP, or no certificate yet");
  }
  function renderDeliveries(s) {
    renderCertificates(s);
    setNum("deliveries.accepted", s.deliveries.accepted);
    setNum("deliveries.rejected", s.deliveries.rejected);
    chart(s.minutes);
    fill("#rejections tbody", Object.keys(s.rejections).map(function (k) {
      return row([k, num("rejections." + k, s.rejections[k])]);
    }), 2, "none");
    fill("#recent tbody", s.recent.map(function (r) {
      var why = el("span");
      if (r.hint_code) {
        why.appendChild(el("b", r.hint_code));
        why.appendChild(document.createTextNode(": " + r.hint));
      } else {
        why.textContent = r.detail || "";
      }
      var id = el("td", r.delivery_id || "-", "id");
      var tr = row([(r.at || "").slice(11, 19)]);
      tr.appendChild(id);
      tr.appendChild(el("td", r.status + " " + r.reason));
      var td = el("td");
      td.appendChild(why);
      tr.appendChild(td);
      return tr;
    }), 4, "none");
    fill("#triggers tbody", s.triggers.map(function (t) {
      return row([t.trigger, num("triggers." + t.trigger + ".events", t.events),
        num("triggers." + t.trigger + ".duplicates", t.duplicates)]);
    }), 3, "none");
    ["primary", "secondary", "raw", "escaped"].forEach(function (k) { setNum("keys." + k, s.keys[k]); });
    document.getElementById("advice").textContent = s.keys.advice;
    setNum("alerts.webhook_deleted", s.alert_counts.webhook_deleted);
    setNum("alerts.no_active_session", s.alert_counts.no_active_session);
    var ul = document.getElementById("alerts");
    ul.textContent = "";
    if (s.alerts.length === 0) ul.appendChild(el("li", "none", "empty"));
    s.alerts.forEach(function (a) {
      var li = el("li");
      li.appendChild(el("b", a.trigger));
      var about = "webhook " + (a.webhook_id || "-");
      if (a.trigger === "WEBHOOK.DELETED") about += ", reason " + (a.reason || "-");
      li.appendChild(document.createTextNode(" at " + a.at + " — " + about + ": " + a.what_to_do));
      ul.appendChild(li);
    });
  }
  function renderInbox(s) {
    var rows = ["pending", "claimed", "done", "dead"].filter(function (k) {
      return k in s.inbox.states;
    }).map(function (k) {
      return row([k, num("inbox." + k, s.inbox.states[k])]);
    });
    if (rows.length > 0 && s.inbox.total !== null) {
      var total = row(["all", num("inbox.total", s.inbox.total)]);
      total.className = "total";
      rows.push(total);
    }
    fill("#inbox tbody", rows, 2, "not counted yet");
    var oldest = document.getElementById("oldest");
    oldest.textContent = "";
    if (s.inbox.oldest_pending_age_s === null) {
      oldest.textContent = "no pending event";
    } else {
      oldest.appendChild(document.createTextNode("oldest pending event: "));
      oldest.appendChild(num("inbox.oldest_pending_age_s", s.inbox.oldest_pending_age_s));
      oldest.appendChild(document.createTextNode(" s old"));
    }
    document.getElementById("inbox-checked").textContent = s.inbox.checked_at || "-";
    document.getElementById("inbox-error").textContent = s.inbox.error || "";
  }
  function renderRetention(s) {
    var r = s.retention;
    if (!r) return;
    ["done", "dead", "v1", "keys"].forEach(function (k) {
      setNum("pruned." + k, s.pruned[k]);
      var kept = document.querySelector("[data-r='" + k + "']");
      if (kept) kept.textContent = r[k];
    });
    var last = document.getElementById("prune-last");
    if (last) last.textContent = r.last_round_at ? "last round at " + r.last_round_at : "no round yet";
    var error = document.getElementById("prune-error");
    if (error) error.textContent = r.off || r.error || "";
  }
  function refresh() {
    fetch("/summary.json", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (s) {
        render(s);
        refreshed += 1;
        document.body.setAttribute("data-refreshed", String(refreshed));
        // Whether the page fits the window's width (no sideways scrolling).
        document.body.setAttribute("data-fits",
          String(document.documentElement.scrollWidth <= window.innerWidth));
        document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function (e) {
        document.getElementById("status").textContent = "refresh failed (" + e.message + "); retrying";
      });
  }
  refresh();
  setInterval(refresh, 5000);
})();
