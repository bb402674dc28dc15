// HQ console: keeps the inbox count and the inbox list live over server-sent events.
// Everything else is plain server-rendered HTML (forms and links).
(function () {
  "use strict";
  var count = document.getElementById("inbox-count");
  var list = document.getElementById("inbox-items");
  var live = document.getElementById("live");
  if (!count || !window.EventSource) return;

  function setCount(n) {
    count.textContent = String(n);
    count.classList.toggle("zero", n === 0);
  }
  setCount(Number(count.textContent) || 0);

  var busy = false, again = false;
  function reload() {
    if (!list) return;
    if (busy) { again = true; return; }
    busy = true;
    fetch(list.dataset.src, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { list.innerHTML = html; })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; reload(); } });
  }

  var es = new EventSource("/console/events");
  es.addEventListener("open", function () { if (live) live.hidden = false; });
  es.addEventListener("error", function () { if (live) live.hidden = true; });
  es.addEventListener("inbox", function (m) {
    var d = {};
    try { d = JSON.parse(m.data); } catch (e) { return; }
    if (typeof d.open === "number") setCount(d.open);
    reload();
  });
  es.addEventListener("resync", reload);
})();
