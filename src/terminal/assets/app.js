// storenode associate terminal: one page, hash routes, a global scan input, live updates over
// server-sent events. Strings come from I18N (i18n.js). No build step, no dependencies.
(function () {
  "use strict";

  const S = {
    lang: localStorage.getItem("sn.lang") || "es",
    me: null,
    screen: "pickups",
    tab: "placed",
    orders: [],
    order: null,          // order being picked
    counter: null,        // order found at the counter
    counterCode: null,    // {code} or {qr} that found it
    customer: null,
    cart: null,
    customers: [],
    card: null,           // GET /customers/{id}: consent, abandoned_since, history
    sale: null,           // sale being returned (GET /sales/{id})
    saleStore: null,      // selling store from a receipt scan
    ret: {},              // sku -> units to return
    damaged: {},          // sku -> true when damaged (written off)
    exchange: [],         // exchange lines {sku, name, price_cents, qty}
    lookupNote: false,    // last search could not reach HQ (X-Storenode-Lookup)
    stock: null,
    status: null,
    link: null,
    flash: null,
    events: null,
  };

  const $ = (sel) => document.querySelector(sel);
  // Screens defined in their own scripts (till.js), built once the helpers below exist.
  const EXT = {};
  const SCAN_SVG = '<svg class="scan-svg" viewBox="0 0 32 24" aria-hidden="true"><path d="M2 2h3v20H2zM7 2h1v20H7zM10 2h2v20h-2zM14 2h1v20h-1zM17 2h3v20h-3zM22 2h1v20h-1zM25 2h2v20h-2zM29 2h1v20h-1z" fill="currentColor"/></svg>';
  const main = () => $("#main");

  // ---------- strings ----------
  function t(key, vars) {
    const dict = I18N[S.lang] || I18N.es;
    let s = dict[key] !== undefined ? dict[key] : (I18N.es[key] !== undefined ? I18N.es[key] : key);
    if (vars) for (const k of Object.keys(vars)) s = s.split("{" + k + "}").join(String(vars[k]));
    return s;
  }
  function esc(s) {
    return String(s === null || s === undefined ? "" : s)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function money(cents) {
    return new Intl.NumberFormat(S.lang === "es" ? "es-ES" : "en-GB", { style: "currency", currency: "EUR" })
      .format((cents || 0) / 100);
  }
  function clock(ms) {
    if (!ms) return t("status.never");
    return new Date(ms).toLocaleTimeString(S.lang === "es" ? "es-ES" : "en-GB", { hour: "2-digit", minute: "2-digit" });
  }
  function ago(ms) {
    const min = Math.max(0, Math.round((Date.now() - ms) / 60000));
    if (min < 1) return t("time.now");
    if (min < 60) return t("pickups.ago", { t: t("time.min", { n: min }) });
    if (min < 48 * 60) return t("pickups.ago", { t: t("time.h", { n: Math.round(min / 60) }) });
    return t("pickups.ago", { t: t("time.d", { n: Math.round(min / 1440) }) });
  }
  function applyStatic() {
    document.documentElement.lang = S.lang;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $("#lang-toggle").textContent = S.lang === "es" ? "EN" : "ES";
    $("#lang-toggle").title = t("lang.other");
    $("#scan").placeholder = t("scan.ph." + S.screen);
  }

  // ---------- sound ----------
  let audio = null;
  function beep(ok) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const tones = ok ? [[1320, 0, 0.09]] : [[220, 0, 0.18], [180, 0.22, 0.28]];
      for (const [freq, start, len] of tones) {
        const o = audio.createOscillator(), g = audio.createGain();
        o.type = ok ? "sine" : "square";
        o.frequency.value = freq;
        g.gain.setValueAtTime(0.18, audio.currentTime + start);
        g.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + start + len);
        o.connect(g); g.connect(audio.destination);
        o.start(audio.currentTime + start); o.stop(audio.currentTime + start + len + 0.02);
      }
    } catch (e) { /* no audio device: the message still shows */ }
  }

  // ---------- messages ----------
  function flash(kind, text) {
    S.flash = { kind, text, at: Date.now() };
    const el = $("#flash");
    el.className = "flash flash-" + kind;
    el.innerHTML = '<span class="flash-ico">' + (kind === "ok" ? "✓" : kind === "error" ? "✕" : "ℹ") + "</span><span>" + esc(text) + "</span>";
    el.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 8000 : 5000);
  }
  function errorText(e) {
    const b = e.body || {};
    switch (b.error) {
      case "bad_credentials": return t("err.bad_credentials", { n: b.attempts_left === undefined ? "?" : b.attempts_left });
      case "locked_out": return t("err.locked_out", { n: b.retry_after_s || "?" });
      case "not_picked": return t("err.not_picked", { n: b.missing || "?" });
      case "insufficient_stock": return t("err.insufficient_stock", { sku: b.sku, n: b.available });
      case "already_returned": return t("err.already_returned", { sku: b.sku, n: b.returnable });
      case undefined: return t("err.network");
      default: {
        const key = "err." + b.error;
        return I18N.es[key] ? t(key) : t("err.generic", { msg: b.message || b.error });
      }
    }
  }

  // ---------- API ----------
  // `meta`, when given, receives response details: `lookup` (the X-Storenode-Lookup header).
  async function api(method, path, body, meta) {
    let res;
    try {
      res = await fetch("/api/v1" + path, {
        method,
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
        credentials: "same-origin",
      });
    } catch (e) {
      throw { status: 0, body: {} };
    }
    if (meta) meta.lookup = res.headers.get("X-Storenode-Lookup");
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      if (res.status === 401 && path !== "/session") { toLogin(); }
      throw { status: res.status, body: data || {} };
    }
    return data;
  }

  // ---------- login ----------
  let pinTarget = "pin";
  function renderKeypad() {
    const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "back"];
    $("#keypad").innerHTML = keys.map((k) => {
      const label = k === "back" ? "⌫" : k === "clear" ? esc(t("login.clear")) : k;
      return '<button type="button" class="key' + (k.length > 1 ? " key-fn" : "") + '" data-key="' + k + '">' + label + "</button>";
    }).join("");
  }
  function toLogin() {
    S.me = null;
    if (S.events) { S.events.close(); S.events = null; }
    $("#shell").hidden = true;
    $("#login").hidden = false;
    applyStatic();
    renderKeypad();
    $("#login-staff").focus();
  }
  async function doLogin(ev) {
    ev.preventDefault();
    const staff = $("#login-staff").value.trim(), pin = $("#login-pin").value;
    const err = $("#login-error");
    err.hidden = true;
    try {
      S.me = await api("POST", "/session", { staff, pin });
      $("#login-pin").value = "";
      beep(true);
      enterShell();
    } catch (e) {
      beep(false);
      err.textContent = errorText(e);
      err.hidden = false;
      $("#login-pin").value = "";
      $("#login-pin").focus();
    }
  }

  // ---------- shell ----------
  function enterShell() {
    $("#login").hidden = true;
    $("#shell").hidden = false;
    $("#store-name").textContent = S.me.store;
    $("#who").innerHTML = '<span class="who-name">' + esc(S.me.name || S.me.staff) + '</span><span class="role role-' + S.me.role + '">' + esc(t("role." + S.me.role)) + "</span>";
    connectEvents();
    refreshStatus();
    route();
    const cs = S.me.cash_session;
    if (cs && cs.stale) flash("error", t("till.stale", { when: new Date(cs.opened_at).toLocaleString(S.lang === "es" ? "es-ES" : "en-GB") }));
  }
  function renderWho() {
    if (S.me) $("#who").innerHTML = '<span class="who-name">' + esc(S.me.name || S.me.staff) + '</span><span class="role role-' + S.me.role + '">' + esc(t("role." + S.me.role)) + "</span>";
  }
  function renderLink() {
    const l = S.link, pill = $("#link-pill");
    if (!l) { pill.hidden = true; return; }
    pill.hidden = false;
    const ops = l.outbox === 1 ? t("link.op") : t("link.ops", { n: l.outbox || 0 });
    if (l.online) {
      pill.className = "pill pill-online";
      pill.innerHTML = '<span class="dot"></span><span>' + esc(t("link.online")) + (l.last_sync ? " · " + esc(t("link.synced", { time: clock(l.last_sync) })) : "") + (l.outbox ? " · " + esc(ops) : "") + "</span>";
    } else {
      pill.className = "pill pill-offline";
      const head = l.since ? t("link.offline", { time: clock(l.since) }) : t("link.offline_nosince");
      pill.innerHTML = '<span class="dot"></span><span>' + esc(head) + " · " + esc(ops) + "</span>";
    }
  }
  async function refreshStatus() {
    try {
      S.status = await api("GET", "/status");
      S.link = { online: S.status.online, since: S.status.since, outbox: S.status.outbox, last_sync: S.status.last_sync };
      renderLink();
      renderInboxCount(S.status.open_conflicts);
      if (S.screen === "status") render();
    } catch (e) { /* shown elsewhere */ }
  }
  function connectEvents() {
    if (S.events) S.events.close();
    const es = new EventSource("/api/v1/events");
    S.events = es;
    es.addEventListener("link", (m) => { S.link = JSON.parse(m.data); renderLink(); if (S.screen === "status") refreshStatus(); });
    es.addEventListener("scan", (m) => {
      const s = JSON.parse(m.data);
      if (s.error) { beep(false); flash("error", t("err.bad_scan", { code: s.code, reason: s.error })); return; }
      handleScan(s.code, s.source);
    });
    es.addEventListener("order", (m) => { onOrderEvent(JSON.parse(m.data)); });
    es.addEventListener("stock", (m) => { const d = JSON.parse(m.data); if (S.screen === "stock" && S.stock && d.skus.includes(S.stock.sku)) lookupStock(S.stock.sku, true); });
    es.addEventListener("conflicts", (m) => { const d = JSON.parse(m.data); renderInboxCount(d.open); if (S.screen === "inbox") loadInbox(); });
    es.addEventListener("resync", () => route());
  }
  function onOrderEvent(d) {
    if (S.screen === "pickups") loadPickups();
    else refreshCounts();
    if (S.screen === "pick" && S.order && S.order.id === d.id) loadOrder(d.id);
  }

  // ---------- routing ----------
  function route() {
    const h = location.hash.replace(/^#\/?/, "");
    const [screen, arg] = h.split("/");
    const known = ["pickups", "pick", "counter", "customers", "returns", "stock", "receive", "send", "status", "inbox"].concat(Object.keys(EXT));
    S.screen = known.includes(screen) ? screen : "pickups";
    document.querySelectorAll("#nav a").forEach((a) => {
      a.classList.toggle("active", a.dataset.screen === S.screen || (S.screen === "pick" && a.dataset.screen === "pickups"));
    });
    applyStatic();
    if (!S.keepFlash) { $("#flash").hidden = true; }
    S.keepFlash = false;
    if (S.screen !== "counter") S.counter = null;
    if (S.screen === "pickups") { if (arg) S.tab = arg; loadPickups(); }
    else if (S.screen === "pick") { S.order = null; render(); loadOrder(decodeURIComponent(arg || "")); }
    else if (S.screen === "status") { render(); refreshStatus(); refreshCounts(); }
    else if (S.screen === "receive") { render(); loadArrivals(); }
    else if (S.screen === "send") { render(); loadSend(); }
    else if (S.screen === "inbox") { render(); loadInbox(); }
    else if (EXT[S.screen]) { render(); EXT[S.screen].load(); }
    else { render(); refreshCounts(); }
    focusScan();
  }
  // Navigation by the page itself keeps its message ("order ready" shown on the queue).
  function go(hash) { S.keepFlash = true; if (location.hash === hash) route(); else location.hash = hash; }
  function focusScan() {
    const a = document.activeElement;
    if (a && a !== document.body && a.matches("input:not(#scan), textarea, select")) return;
    const s = $("#scan");
    if (s && !$("#shell").hidden) s.focus();
  }

  // ---------- scans ----------
  async function handleScan(raw, source) {
    const code = String(raw || "").trim();
    if (!code || !S.me) return;
    if (/^TR1:/i.test(code) || S.screen === "receive") { if (S.screen !== "receive") { go("#/receive"); } return receiveScan(code); }
    const isQr = /^PU1:/i.test(code);
    if (isQr && S.screen !== "counter") { go("#/counter"); setTimeout(() => counterFind(code), 0); return; }
    const isReceipt = RECEIPT_RE.test(code);
    if (isReceipt && S.screen !== "returns") { S.sale = null; go("#/returns"); setTimeout(() => openSale(code), 0); return; }
    if (EXT[S.screen]) return EXT[S.screen].scan(code);
    switch (S.screen) {
      case "returns": return (!S.sale || isReceipt || SALE_ID_RE.test(code)) ? openSale(code) : addExchange(code);
      case "pick": return pickScan(code);
      case "counter": return counterFind(code);
      case "customers": return searchCustomers(code);
      case "stock": return lookupStock(code);
      case "send": return sendScan(code);
      case "pickups": {
        const o = S.orders.find((x) => x.id.toLowerCase() === code.toLowerCase());
        if (o) return go((o.status === "ready" ? "#/counter" : "#/pick/") + (o.status === "ready" ? "" : encodeURIComponent(o.id)));
        go("#/stock"); return setTimeout(() => lookupStock(code), 0);
      }
      default: go("#/stock"); return setTimeout(() => lookupStock(code), 0);
    }
  }

  // ---------- pickups ----------
  const TABS = ["placed", "picking", "ready", "overdue"];
  function counts(orders) {
    const c = { placed: 0, picking: 0, ready: 0, overdue: 0 };
    for (const o of orders) { if (c[o.status] !== undefined) c[o.status]++; if (o.overdue) c.overdue++; }
    return c;
  }
  async function refreshCounts() {
    try { S.orders = await api("GET", "/pickups?status=open"); renderNavCount(); } catch (e) { /* ignore */ }
  }
  function renderNavCount() {
    const n = S.orders.filter((o) => o.status !== "ready").length;
    $("#nav-open").textContent = n ? String(n) : "";
  }
  async function loadPickups() {
    try { S.orders = await api("GET", "/pickups?status=open"); } catch (e) { flash("error", errorText(e)); }
    renderNavCount();
    if (S.screen === "pickups") render();
  }
  function orderCard(o) {
    const pct = o.items ? Math.round((100 * o.picked) / o.items) : 0;
    const action = o.status === "ready" ? "handover" : "pick";
    return '<button class="order-card" data-order="' + esc(o.id) + '" data-status="' + esc(o.status) + '">' +
      '<div class="order-main"><div class="order-id">' + esc(o.id) + '</div>' +
      '<div class="order-customer">' + esc((o.customer && o.customer.name) || (o.customer && o.customer.id) || "") + "</div></div>" +
      '<div class="order-meta"><span class="badge badge-' + esc(o.status) + '">' + esc(t("status." + o.status)) + "</span>" +
      (o.overdue ? '<span class="badge badge-overdue">' + esc(t("pickups.overdue")) + "</span>" : "") +
      (o.conflict ? '<span class="badge badge-conflict">' + esc(t("pickups.conflict")) + "</span>" : "") +
      '<span class="muted">' + esc(o.items === 1 ? t("pickups.item") : t("pickups.items", { n: o.items })) + " · " + esc(ago(o.placed_at)) + "</span></div>" +
      '<div class="order-progress"><div class="bar"><span style="width:' + pct + '%"></span></div><span class="muted">' + o.picked + "/" + o.items + "</span></div>" +
      '<span class="order-go btn btn-' + (action === "handover" ? "success" : "primary") + '">' + esc(t("pickups." + action)) + " →</span></button>";
  }
  function renderPickups() {
    const c = counts(S.orders);
    const list = S.orders.filter((o) => (S.tab === "overdue" ? o.overdue : o.status === S.tab));
    return '<div class="screen-head"><h1>' + esc(t("nav.pickups")) + "</h1></div>" +
      '<div class="segmented" role="tablist">' + TABS.map((k) =>
        '<button role="tab" class="seg' + (S.tab === k ? " active" : "") + (k === "overdue" && c.overdue ? " seg-warn" : "") + '" data-tab="' + k + '">' +
        esc(t("tab." + k)) + '<span class="seg-count">' + c[k] + "</span></button>").join("") + "</div>" +
      (list.length ? '<div class="order-list">' + list.map(orderCard).join("") + "</div>"
        : '<div class="empty"><div class="empty-ico">✓</div>' + esc(t("pickups.empty")) + "</div>");
  }

  // ---------- picking ----------
  async function loadOrder(id) {
    if (!id) return go("#/pickups");
    try { S.order = await api("GET", "/pickups/" + encodeURIComponent(id)); } catch (e) { flash("error", errorText(e)); return; }
    if (S.screen === "pick") render();
  }
  async function pickScan(code) {
    if (!S.order) return;
    try {
      const o = await api("POST", "/pickups/" + encodeURIComponent(S.order.id) + "/pick", { scan: code });
      S.order = o;
      beep(true);
      flash("ok", t("pick.ok", { name: (o.last_pick && o.last_pick.name) || code }));
      S.lastPick = o.last_pick && o.last_pick.sku;
      render();
    } catch (e) {
      beep(false);
      flash("error", errorText(e) + " · " + code);
      S.lastPick = null;
      render();
      const card = document.querySelector(".pick-card");
      if (card) { card.classList.remove("shake"); void card.offsetWidth; card.classList.add("shake"); }
    }
  }
  async function markReady() {
    try {
      const o = await api("POST", "/pickups/" + encodeURIComponent(S.order.id) + "/ready");
      beep(true);
      flash("ok", t("pick.readied", { id: o.id }));
      S.tab = "ready";
      go("#/pickups");
    } catch (e) { beep(false); flash("error", errorText(e)); }
  }
  function renderPick() {
    const o = S.order;
    if (!o) return '<div class="empty">…</div>';
    const done = o.items > 0 && o.picked >= o.items;
    const pct = o.items ? Math.round((100 * o.picked) / o.items) : 0;
    const lines = o.lines.map((l) => {
      const full = l.picked >= l.qty;
      return '<li class="pick-line' + (full ? " full" : "") + (S.lastPick === l.sku ? " just" : "") + '">' +
        '<span class="check">' + (full ? "✓" : "") + "</span>" +
        '<div class="pl-main"><div class="pl-name">' + esc(l.name || l.sku) + '</div><div class="pl-codes muted">' + esc(l.sku) + " · EAN " + esc(l.ean || "—") + "</div></div>" +
        '<div class="pl-qty"><span class="big">' + l.picked + '</span><span class="of">/ ' + l.qty + "</span></div></li>";
    }).join("");
    return '<div class="screen-head"><button class="btn btn-ghost back" data-go="#/pickups">← ' + esc(t("pick.back")) + "</button>" +
      "<h1>" + esc(t("pick.title", { id: o.id })) + "</h1>" +
      '<span class="badge badge-' + esc(o.status) + '">' + esc(t("status." + o.status)) + "</span></div>" +
      '<div class="pick-grid"><div class="card pick-card">' +
      '<div class="pick-summary"><div><div class="muted">' + esc((o.customer && o.customer.name) || "") + '</div><div class="pick-count">' + esc(t("pick.progress", { done: o.picked, total: o.items })) + "</div></div>" +
      '<div class="ring" style="--p:' + pct + '"><span>' + pct + "%</span></div></div>" +
      '<div class="bar bar-lg"><span style="width:' + pct + '%"></span></div>' +
      '<ul class="pick-lines">' + lines + "</ul></div>" +
      '<div class="card pick-side">' +
      '<div class="scan-hint ' + (done ? "hint-done" : "") + '"><div class="hint-ico">' + (done ? "✓" : SCAN_SVG) + "</div><div>" + esc(done ? t("pick.done") : t("pick.prompt")) + "</div></div>" +
      '<button id="ready-btn" class="btn btn-success btn-block btn-xl"' + (done && o.status !== "ready" ? "" : " disabled") + ">" + esc(t("pick.ready")) + "</button></div></div>";
  }

  // ---------- counter ----------
  async function counterFind(code) {
    const isQr = /^PU1:/i.test(code);
    S.counter = null;
    try {
      let order;
      if (isQr) {
        const id = code.split(":")[1] || "";
        order = await api("GET", "/pickups/" + encodeURIComponent(id));
        S.counterCode = { qr: code };
      } else {
        const found = await api("GET", "/pickups?code=" + encodeURIComponent(code));
        if (!found.length) { beep(false); flash("error", t("counter.none") + " · " + code); render(); return; }
        order = found[0];
        S.counterCode = { code };
      }
      S.counter = order;
      if (order.status === "ready") { beep(true); flash("ok", t("counter.verified")); }
      else { beep(false); flash("error", errorText({ body: { error: order.status === "handed_over" ? "already_handed_over" : order.status === "cancelled" ? "order_cancelled" : order.status === "expired" ? "order_expired" : "not_ready" } })); }
    } catch (e) { beep(false); flash("error", errorText(e)); }
    render();
  }
  async function doHandover() {
    const o = S.counter;
    try {
      const r = await api("POST", "/pickups/" + encodeURIComponent(o.id) + "/handover", S.counterCode);
      beep(true);
      S.counter = r;
      S.handed = r.id;
      flash("ok", t("counter.handed", { id: r.id }));
      refreshCounts();
    } catch (e) { beep(false); flash("error", errorText(e)); }
    render();
  }
  function renderCounter() {
    const o = S.counter;
    let body;
    if (!o) {
      const ready = S.orders.filter((x) => x.status === "ready");
      body = '<div class="card hero"><div class="hero-ico">' + SCAN_SVG + '</div><p class="lead">' + esc(t("counter.help")) + "</p></div>" +
        (ready.length ? '<h2 class="section">' + esc(t("counter.ready_list")) + ' <span class="seg-count">' + ready.length + '</span></h2><div class="chips">' +
          ready.map((r) => '<span class="chip"><b>' + esc(r.id) + "</b> " + esc((r.customer && r.customer.name) || "") + "</span>").join("") + "</div>" : "");
    } else {
      const handed = o.status === "handed_over";
      const lines = o.lines.map((l) => '<li><span class="qty">' + l.qty + "×</span> " + esc(l.name || l.sku) + '<span class="muted"> · ' + esc(l.sku) + "</span></li>").join("");
      body = '<div class="card verify ' + (handed ? "verify-done" : o.status === "ready" ? "verify-ok" : "verify-bad") + '">' +
        '<div class="verify-head"><div><div class="muted">' + esc(t("counter.code")) + " ✓</div><div class=\"order-id xl\">" + esc(o.id) + "</div>" +
        '<div class="customer-name">' + esc((o.customer && o.customer.name) || "") + "</div></div>" +
        '<span class="badge badge-' + esc(o.status) + ' badge-lg">' + esc(t("status." + o.status)) + "</span></div>" +
        '<ul class="item-list">' + lines + "</ul>" +
        (handed ? '<button class="btn btn-primary btn-block btn-xl" data-action="next-customer">' + esc(t("counter.another")) + "</button>"
          : '<button id="handover-btn" class="btn btn-success btn-block btn-xl"' + (o.status === "ready" ? "" : " disabled") + ">" + esc(t("counter.handover")) + "</button>") +
        "</div>";
    }
    return '<div class="screen-head"><h1>' + esc(t("counter.title")) + "</h1></div>" + body;
  }

  // ---------- customers and sale ----------
  async function searchCustomers(q) {
    S.customer = null; S.cart = null; S.lookupNote = false;
    const meta = {};
    try { S.customers = await api("GET", "/customers?q=" + encodeURIComponent(q), undefined, meta); }
    catch (e) { S.customers = []; beep(false); flash("error", errorText(e)); render(); return; }
    // local-only: HQ unreachable; hq-timeout: HQ did not answer. Only this store's customers.
    S.lookupNote = meta.lookup === "local-only" || meta.lookup === "hq-timeout";
    if (S.customers.length === 1) return openCustomer(S.customers[0].id);
    if (!S.customers.length) { beep(false); flash("error", t("customers.none")); }
    render();
  }
  async function openCustomer(id) {
    S.card = null;
    try {
      S.cart = await api("GET", "/customers/" + encodeURIComponent(id) + "/cart");
      S.card = await api("GET", "/customers/" + encodeURIComponent(id));
      S.customer = S.customers.find((c) => c.id === id) || { id, name: S.cart.name };
      S.sell = {};
      for (const l of S.cart.lines) S.sell[l.sku] = Math.min(l.qty, l.available_here);
    } catch (e) { flash("error", errorText(e)); }
    render();
  }
  async function sell(tender) {
    const lines = Object.entries(S.sell || {}).filter(([, q]) => q > 0).map(([sku, qty]) => ({ sku, qty }));
    if (!lines.length) { beep(false); flash("error", t("customers.nothing")); return; }
    try {
      const r = await api("POST", "/sales", { lines, customer: S.customer.id, tender });
      beep(true);
      flash("ok", t("customers.sold", { id: r.id, total: money(r.total_cents) }) + (tender === "cash" ? " " + t("customers.drawer") : ""));
      await openCustomer(S.customer.id);
    } catch (e) { beep(false); flash("error", errorText(e)); }
  }
  async function setConsent(channel, granted) {
    try {
      await api("PUT", "/customers/" + encodeURIComponent(S.customer.id) + "/consent/" + channel, { granted });
      beep(true);
      flash("ok", t("consent.saved"));
      await openCustomer(S.customer.id);
    } catch (e) { beep(false); flash("error", errorText(e)); }
  }
  function renderCustomers() {
    let body = "";
    if (S.cart && S.customer) {
      const c = S.customer;
      const rows = S.cart.lines.map((l) => {
        const here = l.available_here, want = (S.sell && S.sell[l.sku]) || 0;
        const cls = here <= 0 ? "stock-none" : here < l.qty ? "stock-low" : "stock-ok";
        return '<tr><td><div class="pl-name">' + esc(l.name || l.sku) + '</div><div class="muted small">' + esc(l.sku) + "</div></td>" +
          '<td class="num">' + l.qty + '</td><td><span class="stock-tag ' + cls + '">' + esc(here > 0 ? t("customers.here", { n: here }) : t("customers.none_here")) + "</span></td>" +
          '<td class="num">' + money(l.price_cents) + "</td>" +
          '<td><div class="stepper"><button class="step" data-step="-1" data-sku="' + esc(l.sku) + '"' + (want <= 0 ? " disabled" : "") + '>−</button><span class="step-val">' + want +
          '</span><button class="step" data-step="1" data-sku="' + esc(l.sku) + '"' + (want >= Math.min(here, 999) ? " disabled" : "") + ">+</button></div></td></tr>";
      }).join("");
      const total = S.cart.lines.reduce((s, l) => s + ((S.sell && S.sell[l.sku]) || 0) * (l.price_cents || 0), 0);
      const contacts = [c.phone, c.email, c.loyalty_card].filter(Boolean).map((x) => '<div class="muted">' + esc(x) + "</div>").join("");
      const cartHtml = S.cart.lines.length
        ? '<table class="cart"><thead><tr><th></th><th class="num">' + esc(t("customers.in_cart")) + "</th><th></th><th class=\"num\">" + esc(t("stock.price")) + "</th><th>" + esc(t("customers.qty")) + "</th></tr></thead><tbody>" + rows + "</tbody></table>"
        : '<div class="empty">' + esc(t("customers.cart_empty")) + "</div>";
      const since = S.cart.abandoned_since;
      const badge = since ? '<span class="badge badge-warn" data-abandoned>' + esc(t("customers.abandoned", { n: Math.max(1, Math.floor((Date.now() - since) / 86400000)) })) + "</span>" : "";
      const consent = S.cart.consent || {};
      const consentHtml = '<div class="consent" data-consents>' + ["email", "sms", "whatsapp"].map((ch) => {
        const k = consent[ch], on = !!(k && k.granted);
        return '<button class="chip consent-' + (on ? "on" : "off") + '" data-consent="' + ch + '" data-granted="' + (on ? "false" : "true") + '" title="' + esc(k ? k.source : "") + '">' +
          esc(t("consent." + ch)) + ": " + esc(t(on ? "consent.yes" : "consent.no")) + "</button>";
      }).join("") + "</div>";
      body = '<div class="customer-grid"><div class="card"><h2 class="section">' + esc(t("customers.cart")) + " " + badge + "</h2>" + cartHtml + "</div>" +
        '<aside class="card summary"><div class="customer-card"><div class="avatar">' + esc((c.name || "?").trim().charAt(0)) + '</div><div><div class="customer-name">' + esc(c.name || c.id) + "</div>" + contacts + "</div></div>" + consentHtml +
        '<div class="total"><span class="muted">' + esc(t("customers.total")) + '</span><span class="total-val">' + money(total) + "</span></div>" +
        '<button class="btn btn-success btn-block btn-xl" data-tender="cash"' + (total > 0 ? "" : " disabled") + ">" + esc(t("customers.pay_cash")) + "</button>" +
        '<button class="btn btn-primary btn-block btn-xl" data-tender="card"' + (total > 0 ? "" : " disabled") + ">" + esc(t("customers.pay_card")) + "</button></aside></div>";
    } else if (S.customers.length) {
      body = '<div class="result-list">' + S.customers.map((c) => '<button class="result" data-customer="' + esc(c.id) + '"><div class="avatar">' + esc((c.name || "?").charAt(0)) + '</div><div class="grow"><div class="customer-name">' + esc(c.name || c.id) + '</div><div class="muted">' + [c.phone, c.email].filter(Boolean).map(esc).join(" · ") + '</div></div><span class="badge">' + esc(t("customers.lines", { n: c.cart_lines })) + "</span></button>").join("") + "</div>";
    } else {
      body = '<div class="card hero"><div class="hero-ico">☺</div><p class="lead">' + esc(t("customers.help")) + "</p></div>";
    }
    if (S.cart && S.customer) body += historyCard();
    const note = S.lookupNote && !S.cart
      ? '<div class="lookup-note" role="status" data-lookup-note>' + esc(t("customers.hq_unreachable")) + "</div>" : "";
    return '<div class="screen-head"><h1>' + esc(t("customers.title")) + "</h1></div>" + note + body;
  }

  // ---------- returns and exchanges ----------
  const RECEIPT_RE = /^(\][A-Za-z][0-9A-Za-z])?SR1:/;
  const SALE_ID_RE = /^(S\d|O-)/;
  function historyCard() {
    const h = (S.card && S.card.history) || [];
    const rows = h.map((x) => '<tr data-history="' + esc(x.kind) + '"><td>' + esc(t("returns.kind." + x.kind)) + '</td><td class="mono">' + esc(x.id) +
      '</td><td class="muted">' + esc(x.store) + '</td><td class="muted">' + esc(ago(x.at)) + '</td><td class="num">' + money(x.total_cents) + "</td><td>" +
      (x.kind !== "return" ? '<button class="btn btn-ghost" data-return-sale="' + esc(x.id) + '" data-return-store="' + esc(x.store) + '">' + esc(t("returns.return")) + "</button>" : "") + "</td></tr>").join("");
    return '<div class="card history"><h2 class="section">' + esc(t("returns.history")) + "</h2>" +
      (h.length ? '<table class="cart"><tbody>' + rows + "</tbody></table>" : '<div class="empty">' + esc(t("returns.history_empty")) + "</div>") + "</div>";
  }
  async function openSale(ref, store) {
    let id = String(ref || "").trim().replace(/^\][A-Za-z][0-9A-Za-z]/, "");
    const m = /^SR1:([^:]+):(.+)$/i.exec(id);
    if (m) { store = m[1]; id = m[2]; }
    const meta = {};
    S.ret = {}; S.damaged = {}; S.exchange = []; S.saleStore = store || null;
    try {
      S.sale = await api("GET", "/sales/" + encodeURIComponent(id), undefined, meta);
      S.sale.fetched = meta.lookup === "hq";
      beep(true);
    } catch (e) { S.sale = null; beep(false); flash("error", errorText(e) + " · " + id); }
    render();
  }
  async function addExchange(code) {
    try {
      const p = await api("GET", "/stock/" + encodeURIComponent(code));
      const l = S.exchange.find((x) => x.sku === p.sku);
      if (l) l.qty++; else S.exchange.push({ sku: p.sku, name: p.name, price_cents: p.price_cents, qty: 1 });
      beep(true);
    } catch (e) { beep(false); flash("error", errorText(e) + " · " + code); }
    render();
  }
  function returnTotals() {
    const refund = S.sale ? S.sale.lines.reduce((a, l) => a + (S.ret[l.sku] || 0) * l.price_cents, 0) : 0;
    const extra = S.exchange.reduce((a, x) => a + x.qty * x.price_cents, 0);
    return { refund, net: extra - refund };
  }
  async function doReturn(tender) {
    const lines = S.sale.lines.filter((l) => (S.ret[l.sku] || 0) > 0)
      .map((l) => ({ sku: l.sku, qty: S.ret[l.sku], restock: !S.damaged[l.sku] }));
    if (!lines.length) { beep(false); flash("error", t("returns.nothing")); return; }
    const body = { sale: S.sale.id, lines, tender };
    if (S.exchange.length) body.exchange = S.exchange.map((x) => ({ sku: x.sku, qty: x.qty }));
    if (S.saleStore) body.sale_store = S.saleStore;
    try {
      const r = await api("POST", "/returns", body);
      const net = r.net_cents !== undefined ? r.net_cents : -r.refund_cents;
      beep(true);
      flash("ok", t(net > 0 ? "returns.done_pay" : "returns.done_refund", { id: r.id, amount: money(Math.abs(net)) }) +
        (tender === "cash" && net !== 0 ? " " + t("customers.drawer") : "") + (r.verified ? "" : " " + t("returns.unverified")));
      await openSale(S.sale.id, S.saleStore);
    } catch (e) { beep(false); flash("error", errorText(e)); }
  }
  function renderReturns() {
    const s = S.sale;
    if (!s) return '<div class="screen-head"><h1>' + esc(t("returns.title")) + '</h1></div><div class="card hero"><div class="hero-ico">↩</div><p class="lead">' + esc(t("returns.help")) + "</p></div>";
    const rows = s.lines.map((l) => {
      const want = S.ret[l.sku] || 0, dmg = !!S.damaged[l.sku];
      return '<tr data-line="' + esc(l.sku) + '"><td><div class="pl-name">' + esc(l.name || l.sku) + '</div><div class="muted small">' + esc(l.sku) + "</div></td>" +
        '<td class="num">' + l.qty + '</td><td class="num">' + l.returned + '</td><td class="num">' + money(l.price_cents) + "</td>" +
        '<td><div class="stepper"><button class="step" data-rstep="-1" data-sku="' + esc(l.sku) + '"' + (want <= 0 ? " disabled" : "") + '>−</button><span class="step-val">' + want +
        '</span><button class="step" data-rstep="1" data-sku="' + esc(l.sku) + '"' + (want >= l.returnable ? " disabled" : "") + ">+</button></div></td>" +
        '<td><button class="btn btn-ghost" data-damaged="' + esc(l.sku) + '" aria-pressed="' + dmg + '">' + esc(dmg ? t("returns.damaged") : t("returns.restock")) + "</button></td></tr>";
    }).join("");
    const ex = S.exchange.map((x) => '<tr><td>' + esc(x.name || x.sku) + '</td><td class="num">' + x.qty + '</td><td class="num">' + money(x.qty * x.price_cents) + "</td></tr>").join("");
    const tot = returnTotals(), pay = tot.net > 0;
    const warn = (s.conflicts || []).map((c) => '<div class="alert alert-error">' + esc(t("returns.double", { sku: c.sku })) + "</div>").join("");
    return '<div class="screen-head"><h1>' + esc(t("returns.sale", { id: s.id })) + '</h1><span class="muted">' + esc(t("returns.sold_at", { store: s.store, when: ago(s.at) })) + "</span></div>" + warn +
      (s.fetched ? '<div class="lookup-note" role="status">' + esc(t("returns.remote")) + "</div>" : "") +
      '<div class="return-grid"><div><div class="card"><table class="cart"><thead><tr><th></th><th class="num">' + esc(t("returns.sold")) + '</th><th class="num">' + esc(t("returns.returned")) +
      '</th><th class="num">' + esc(t("stock.price")) + "</th><th>" + esc(t("returns.return")) + "</th><th></th></tr></thead><tbody>" + rows + "</tbody></table></div>" +
      '<div class="card"><h2 class="section">' + esc(t("returns.exchange")) + '</h2><p class="muted">' + esc(t("returns.exchange_help")) + "</p>" + (ex ? '<table class="cart"><tbody>' + ex + "</tbody></table>" : "") + "</div></div>" +
      '<aside class="card summary"><div class="total"><span class="muted">' + esc(pay ? t("returns.to_pay") : t("returns.refund")) + '</span><span class="total-val" data-net>' + money(Math.abs(tot.net)) + "</span></div>" +
      '<button class="btn btn-success btn-block btn-xl" data-refund="cash"' + (tot.refund > 0 ? "" : " disabled") + ">" + esc(t(pay ? "returns.pay_cash" : "returns.refund_cash")) + "</button>" +
      '<button class="btn btn-primary btn-block btn-xl" data-refund="card"' + (tot.refund > 0 ? "" : " disabled") + ">" + esc(t(pay ? "returns.pay_card" : "returns.refund_card")) + "</button></aside></div>";
  }

  // ---------- stock ----------
  async function lookupStock(code, quiet) {
    try {
      S.stock = await api("GET", "/stock/" + encodeURIComponent(code));
      if (!quiet) beep(true);
    } catch (e) { S.stock = null; beep(false); flash("error", errorText(e) + " · " + code); }
    render();
  }
  async function recordCount(ev) {
    ev.preventDefault();
    const n = parseInt($("#counted").value, 10);
    try {
      const r = await api("POST", "/stock/" + encodeURIComponent(S.stock.sku) + "/count", { counted: isNaN(n) ? -1 : n });
      S.stock = r;
      beep(true);
      flash(r.shrinkage ? "error" : "ok", t("stock.recorded", { n: r.available }) + (r.shrinkage ? " " + t("stock.shrinkage", { n: r.shrinkage }) : ""));
    } catch (e) { beep(false); flash("error", errorText(e)); }
    render();
  }
  function renderStock() {
    const s = S.stock;
    let body;
    if (!s) body = '<div class="card hero"><div class="hero-ico">▦</div><p class="lead">' + esc(t("stock.help")) + "</p></div>";
    else {
      const tile = (k, v, cls) => '<div class="tile ' + (cls || "") + '"><div class="tile-val">' + v + '</div><div class="tile-label">' + esc(t(k)) + "</div></div>";
      body = '<div class="card product"><div><div class="product-name">' + esc(s.name) + '</div><div class="muted">' + esc(s.sku) + " · EAN " + esc(s.ean) + '</div></div><div class="price">' + money(s.price_cents) + "</div></div>" +
        '<div class="tiles">' + tile("stock.available", s.available, s.available > 0 ? "tile-ok" : "tile-bad") + tile("stock.store_rights", s.store_rights) + tile("stock.hq_rights", s.hq_rights) + tile("stock.reserved", s.reserved) + "</div>" +
        '<div class="card"><h2 class="section">' + esc(t("stock.count")) + "</h2>" +
        (S.me && S.me.role === "manager"
          ? '<p class="muted">' + esc(t("stock.count_help")) + " " + esc(t("stock.on_hand")) + ": <b>" + s.on_hand + '</b></p><form id="count-form" class="inline-form"><label class="field grow"><span>' + esc(t("stock.counted")) + '</span><input id="counted" type="number" min="0" inputmode="numeric" value="' + s.on_hand + '"></label><button class="btn btn-primary btn-xl" type="submit">' + esc(t("stock.record")) + "</button></form>"
          : '<p class="muted lock">' + esc(t("stock.manager_only")) + "</p>") + "</div>";
    }
    return '<div class="screen-head"><h1>' + esc(t("stock.title")) + "</h1></div>" + body;
  }

  // ---------- status ----------
  function renderStatus() {
    const s = S.status, l = S.link || {};
    if (!s) return '<div class="empty">…</div>';
    const ops = l.outbox === 1 ? t("link.op") : t("link.ops", { n: l.outbox || 0 });
    const head = l.online ? t("link.online") : (l.since ? t("link.offline", { time: clock(l.since) }) : t("link.offline_nosince"));
    const devices = (s.devices || []).map((d) => '<li class="device"><span class="dot ' + (d.ok ? "dot-ok" : "dot-bad") + '"></span><div class="grow"><b>' + esc(d.name) + '</b> <span class="muted">' + esc(d.kind) + " · " + esc(d.detail) + '</span></div><span class="badge ' + (d.ok ? "badge-ready" : "badge-overdue") + '">' + esc(d.ok ? t("status.ok") : t("status.fault")) + "</span></li>").join("");
    return '<div class="screen-head"><h1>' + esc(t("status.title")) + "</h1></div>" +
      '<div class="card link-card ' + (l.online ? "link-on" : "link-off") + '"><div class="link-big"><span class="dot dot-xl"></span><div><div class="muted">' + esc(t("status.link")) + '</div><div class="link-head">' + esc(head) + (l.online ? "" : " · " + esc(ops)) + "</div>" +
      (l.online ? "" : '<div class="muted">' + esc(t("status.offline_help")) + "</div>") + "</div></div></div>" +
      '<div class="tiles">' +
      '<div class="tile"><div class="tile-val">' + (l.outbox || 0) + '</div><div class="tile-label">' + esc(t("status.outbox")) + "</div></div>" +
      '<div class="tile"><div class="tile-val">' + esc(clock(l.last_sync)) + '</div><div class="tile-label">' + esc(t("status.last_sync")) + "</div></div>" +
      '<div class="tile"><div class="tile-val">' + (s.open_orders || 0) + '</div><div class="tile-label">' + esc(t("status.open_orders")) + "</div></div>" +
      '<div class="tile"><div class="tile-val mono">' + esc(s.digest) + '</div><div class="tile-label">' + esc(t("status.digest")) + "</div></div></div>" +
      '<div class="card"><h2 class="section">' + esc(t("status.devices")) + '</h2><ul class="devices">' + devices + "</ul></div>";
  }

  // ---------- receiving: deliveries and transfers ----------
  // The list of arrivals for this store; scanning a transfer note's QR or an id opens one,
  // scanning items counts them (an item not in it is refused); confirm posts the receipt.
  async function loadArrivals() {
    try {
      // A ship-to-store transfer whose sender's dispatch has not reached us yet can still be
      // received: the units are here, the note's QR opens it.
      const [ships, trs, waiting] = await Promise.all([api("GET", "/shipments?status=expected"), api("GET", "/transfers?status=in_transit"), api("GET", "/transfers?status=awaiting_dispatch")]);
      S.arrivals = ships.concat(trs.concat(waiting).filter((x) => S.me && x.to === S.me.store));
      render();
    } catch (e) { flash("error", errorText(e)); }
  }
  function openArrival(id) {
    const a = (S.arrivals || []).find((x) => x.id.toLowerCase() === id.toLowerCase());
    if (!a) return false;
    S.rcv = { m: a, n: {}, bad: {} };
    render();
    return true;
  }
  async function receiveScan(code) {
    const id = code.replace(/^TR1:/i, "");
    if (!S.arrivals) await loadArrivals();
    if (openArrival(id)) { beep(true); return; }
    if (!S.rcv) { beep(false); flash("error", t("receive.unknown", { id })); return; }
    let sku = code;
    if (!S.rcv.m.lines.some((l) => l.sku === code)) {
      try { sku = (await api("GET", "/stock/" + encodeURIComponent(code))).sku; } catch (e) { sku = null; }
    }
    if (!sku || !S.rcv.m.lines.some((l) => l.sku === sku)) { beep(false); flash("error", t("receive.not_in", { code })); return; }
    S.rcv.n[sku] = (S.rcv.n[sku] || 0) + 1;
    beep(true); $("#flash").hidden = true; render();
  }
  async function confirmReceipt() {
    const r = S.rcv;
    const lines = r.m.lines.map((l) => ({ sku: l.sku, received: r.n[l.sku] || 0, damaged: Math.min(r.bad[l.sku] || 0, r.n[l.sku] || 0) }));
    const path = (r.m.kind === "transfer" ? "/transfers/" : "/shipments/") + encodeURIComponent(r.m.id) + "/receive";
    try {
      const done = await api("POST", path, { lines });
      S.rcv = null;
      flash("ok", t("receive.done", { id: done.id, n: done.discrepancies }));
      loadArrivals();
    } catch (e) { beep(false); flash("error", errorText(e)); }
  }
  function renderReceive() {
    const r = S.rcv;
    if (!r) {
      const rows = (S.arrivals || []).map((a) => '<button class="order-card arrival" data-arrival="' + esc(a.id) + '"><span><b>' + esc(a.id) + "</b> · " + esc(t("receive.kind." + a.kind)) + " · " + esc(a.from || a.reference || "") + (a.order ? " · " + esc(t("receive.for_order", { id: a.order })) : "") + (a.status === "awaiting_dispatch" ? ' · <span class="badge">' + esc(t("receive.not_dispatched")) + "</span>" : "") + '</span><span class="muted">' + a.lines.map((l) => esc(l.name || l.sku) + " × " + l.qty).join(", ") + "</span></button>").join("");
      return '<div class="screen-head"><h1>' + esc(t("receive.title")) + '</h1></div><div class="card"><p class="muted">' + esc(t("receive.help")) + "</p>" + (rows || "<p>" + esc(t("receive.none")) + "</p>") + "</div>";
    }
    const lines = r.m.lines.map((l) => {
      const n = r.n[l.sku] || 0, bad = r.bad[l.sku] || 0;
      return '<tr class="rcv-line" data-line="' + esc(l.sku) + '"><td><b>' + esc(l.name || l.sku) + '</b><div class="muted">' + esc(l.sku) + '</div></td><td class="num">' + l.qty + '</td><td class="num rcv-count">' + n + '</td><td class="num">' + bad + ' <button class="btn btn-ghost" data-damaged="' + esc(l.sku) + '">' + esc(t("receive.damaged")) + "</button></td></tr>";
    }).join("");
    return '<div class="screen-head"><h1>' + esc(t("receive.title")) + " · " + esc(r.m.id) + '</h1>' + (r.m.order ? '<span class="badge">' + esc(t("receive.for_order", { id: r.m.order })) + "</span>" : "") + '</div><div class="card"><table class="cart"><thead><tr><th>' + esc(t("send.item")) + '</th><th class="num">' + esc(t("receive.sent")) + '</th><th class="num">' + esc(t("receive.counted")) + '</th><th class="num">' + esc(t("receive.damaged")) + "</th></tr></thead><tbody>" + lines + '</tbody></table><button id="receive-confirm" class="btn btn-primary btn-xl">' + esc(t("receive.confirm")) + "</button></div>";
  }
  // ---------- sending a transfer (managers) ----------
  // Pick the destination among the store's `transfer_to`, scan items (each scan adds one, up
  // to what is sellable here), send: the units leave this store's rights and the note with
  // its QR prints in the same commit. Transfers on their way (also those HQ asked this store
  // to send for a ship-to-store order) can have their note printed again.
  async function loadSend() {
    if (!S.send) S.send = { to: null, lines: [], dests: [], outgoing: [] };
    if (!isManager()) { render(); return; }
    try {
      const [d, trs, waiting] = await Promise.all([api("GET", "/transfers/destinations"), api("GET", "/transfers?status=in_transit"), api("GET", "/transfers?status=awaiting_dispatch")]);
      S.send.dests = d.to;
      if (S.send.dests.length === 1 && !S.send.to) S.send.to = S.send.dests[0];
      S.send.outgoing = trs.filter((x) => x.from === d.from);
      S.send.waiting = waiting.filter((x) => x.from === d.from);
      render();
    } catch (e) { flash("error", errorText(e)); }
  }
  async function sendScan(code) {
    if (!isManager()) { beep(false); flash("error", t("send.manager_only")); return; }
    let p;
    try { p = await api("GET", "/stock/" + encodeURIComponent(code)); } catch (e) { beep(false); flash("error", errorText(e) + " · " + code); return; }
    const l = S.send.lines.find((x) => x.sku === p.sku);
    const have = l ? l.qty : 0;
    if (have + 1 > p.store_rights) { beep(false); flash("error", t("send.too_many", { n: p.store_rights, sku: p.name })); return; }
    if (l) { l.qty++; l.max = p.store_rights; } else S.send.lines.push({ sku: p.sku, name: p.name, qty: 1, max: p.store_rights });
    beep(true); $("#flash").hidden = true; render();
  }
  async function dispatchTransfer() {
    const sd = S.send;
    const lines = sd.lines.filter((l) => l.qty > 0).map((l) => ({ sku: l.sku, qty: l.qty }));
    try {
      const tr = await api("POST", "/transfers", { to: sd.to, lines });
      beep(true);
      flash("ok", t("send.done", { id: tr.id, to: tr.to }));
      S.send.lines = [];
      S.send.last = tr;
      loadSend();
    } catch (e) { beep(false); flash("error", errorText(e)); }
  }
  // A ship-to-store transfer HQ asked this store to send: confirm its units are leaving now
  // (they stop counting on this shelf), and its note prints.
  async function dispatchShip(id) {
    try {
      await api("POST", "/transfers/" + encodeURIComponent(id) + "/dispatch", {});
      beep(true); flash("ok", t("send.dispatched", { id }));
      loadSend();
    } catch (e) { beep(false); flash("error", errorText(e)); }
  }
  async function printNote(id) {
    try { await api("POST", "/transfers/" + encodeURIComponent(id) + "/note"); beep(true); flash("ok", t("send.printed", { id })); } catch (e) { beep(false); flash("error", errorText(e)); }
  }
  function renderSend() {
    const head = '<div class="screen-head"><h1>' + esc(t("send.title")) + "</h1></div>";
    if (!isManager()) return head + '<div class="card"><p class="muted lock">' + esc(t("send.manager_only")) + "</p></div>";
    const sd = S.send || { dests: [], lines: [], outgoing: [] };
    const dests = sd.dests.length
      ? '<div class="segmented dests">' + sd.dests.map((d) => '<button class="seg' + (d === sd.to ? " active" : "") + '" data-dest="' + esc(d) + '">' + esc(d) + "</button>").join("") + "</div>"
      : '<p class="alert alert-error">' + esc(t("send.no_dest")) + "</p>";
    const rows = sd.lines.map((l) => '<tr class="send-line" data-sline="' + esc(l.sku) + '"><td><b>' + esc(l.name) + '</b><div class="muted">' + esc(l.sku) + '</div></td><td class="num">' + l.max + '</td><td class="num"><span class="stepper"><button class="step" data-sstep="-1" data-sku="' + esc(l.sku) + '">−</button><span class="step-val send-qty">' + l.qty + '</span><button class="step" data-sstep="1" data-sku="' + esc(l.sku) + '"' + (l.qty >= l.max ? " disabled" : "") + ">+</button></span></td></tr>").join("");
    const units = sd.lines.reduce((n, l) => n + l.qty, 0);
    const table = rows
      ? '<table class="cart"><thead><tr><th>' + esc(t("send.item")) + '</th><th class="num">' + esc(t("send.sellable")) + '</th><th class="num">' + esc(t("send.qty")) + "</th></tr></thead><tbody>" + rows + "</tbody></table>"
      : '<div class="hero"><div class="hero-ico">⇪</div><p class="lead">' + esc(t("send.empty")) + "</p></div>";
    const ready = sd.to && units > 0;
    const lineText = (m) => m.lines.map((l) => esc(l.name || l.sku) + " × " + l.qty).join(", ");
    const waiting = (sd.waiting || []).map((m) => '<div class="outgoing" data-wait="' + esc(m.id) + '"><div><b class="order-id">' + esc(m.id) + "</b> → " + esc(m.to) + (m.order ? ' · <span class="badge">' + esc(t("send.for_order", { id: m.order })) + "</span>" : "") + '<div class="muted">' + lineText(m) + '</div></div><button class="btn btn-primary" data-ship="' + esc(m.id) + '">' + esc(t("send.dispatch_ship")) + "</button></div>").join("");
    const out = sd.outgoing.map((m) => '<div class="outgoing" data-out="' + esc(m.id) + '"><div><b class="order-id">' + esc(m.id) + "</b> → " + esc(m.to) + (m.order ? ' · <span class="badge">' + esc(t("send.for_order", { id: m.order })) + "</span>" : "") + '<div class="muted">' + m.lines.map((l) => esc(l.name || l.sku) + " × " + l.qty).join(", ") + '</div></div><button class="btn btn-ghost" data-note="' + esc(m.id) + '">' + esc(t("send.note")) + "</button></div>").join("");
    return head +
      (waiting ? '<div class="card history"><h2 class="section">' + esc(t("send.to_dispatch")) + '</h2><p class="muted">' + esc(t("send.to_dispatch_help")) + "</p>" + waiting + "</div>" : "") +
      '<div class="return-grid"><div class="card"><h2 class="section">' + esc(t("send.to")) + "</h2>" + dests + '<p class="muted">' + esc(t("send.help")) + "</p>" + table + "</div>" +
      '<aside class="card summary"><div class="total"><span class="muted">' + esc(t("send.units")) + '</span><span class="total-val" data-units>' + units + "</span></div>" +
      '<div class="muted">' + esc(sd.to ? t("send.to_store", { to: sd.to }) : t("send.pick_dest")) + "</div>" +
      '<button id="send-dispatch" class="btn btn-primary btn-block btn-xl"' + (ready ? "" : " disabled") + ">" + esc(t("send.dispatch")) + "</button></aside></div>" +
      '<div class="card history"><h2 class="section">' + esc(t("send.outgoing")) + "</h2>" + (out || '<p class="muted">' + esc(t("send.none_out")) + "</p>") + "</div>";
  }

  // ---------- conflict inbox (managers) ----------
  function isManager() { return !!(S.me && S.me.role === "manager"); }
  function renderInboxCount(n) {
    const link = $("#nav-inbox");
    if (link) link.hidden = !isManager();
    if (typeof n === "number") $("#nav-conflicts").textContent = n ? String(n) : "";
  }
  async function loadInbox() {
    if (!isManager()) { S.inbox = []; render(); return; }
    try { S.inbox = await api("GET", "/conflicts"); } catch (e) { flash("error", errorText(e)); return; }
    renderInboxCount(S.inbox.filter((c) => !c.resolved).length);
    if (S.screen === "inbox") render();
  }
  function factsText(c) {
    const f = c.facts || {};
    // A line object reads "SKU-2 sent 6 received 4 lost 2": its sku or id first.
    const first = ["sku", "id", "store"];
    const one = (x) => (x && typeof x === "object"
      ? Object.keys(x).sort((a, b) => (first.indexOf(b) - first.indexOf(a))).map((k) => (first.includes(k) ? x[k] : k + " " + x[k])).join(" ")
      : x);
    const value = (k, v) => (k.endsWith("_ms") ? clock(v) : Array.isArray(v) ? v.map(one).join("; ") : v);
    return Object.keys(f).filter((k) => f[k] !== null).map((k) => k.replace(/_ms$/, "") + ": " + value(k, f[k])).join(" · ");
  }
  function conflictCard(c) {
    const summary = S.lang === "en" ? c.summary : c.summary_es;
    const actions = c.resolved ? '<div class="muted" data-resolution>' + esc(t("inbox.resolved", { action: actionText(c.resolution.action), by: c.resolution.by, time: clock(c.resolution.at) })) + (c.resolution.note ? " · " + esc(c.resolution.note) : "") + "</div>"
      : '<form class="resolve-form" data-conflict="' + esc(c.id) + '"><input class="input" name="note" maxlength="500" placeholder="' + esc(t("inbox.note")) + '">' +
        c.actions.map((a) => '<button class="btn btn-primary" type="submit" name="action" value="' + esc(a) + '">' + esc(actionText(a)) + "</button>").join(" ") + "</form>";
    return '<div class="card conflict-card" data-kind="' + esc(c.kind) + '" data-id="' + esc(c.id) + '"><div><span class="badge badge-' + (c.resolved ? "ready" : "overdue") + '">' + esc(t("inbox.kind." + c.kind)) + '</span> <span class="muted">' + esc(clock(c.at)) + "</span></div>" +
      '<p class="conflict-summary">' + esc(summary) + '</p><div class="muted mono small">' + esc(factsText(c)) + "</div>" + actions + "</div>";
  }
  function actionText(a) {
    if (a.startsWith("cancel_order:")) return t("inbox.action.cancel_order", { order: a.slice(13) });
    return t("inbox.action." + a);
  }
  function renderInbox() {
    if (!isManager()) return '<div class="empty">' + esc(t("inbox.managers_only")) + "</div>";
    const items = S.inbox || [];
    const open = items.filter((c) => !c.resolved), done = items.filter((c) => c.resolved);
    return '<div class="screen-head"><h1>' + esc(t("inbox.title")) + "</h1></div>" +
      (open.length ? open.map(conflictCard).join("") : '<div class="empty">' + esc(t("inbox.empty")) + "</div>") +
      (done.length ? '<h2 class="section">' + esc(t("inbox.done")) + "</h2>" + done.map(conflictCard).join("") : "");
  }
  async function resolveConflict(ev) {
    ev.preventDefault();
    const form = ev.target.closest("form");
    const action = ev.submitter ? ev.submitter.value : "";
    try {
      await api("POST", "/conflicts/" + encodeURIComponent(form.dataset.conflict) + "/resolve", { action, note: form.elements.note.value });
      flash("ok", t("inbox.saved"));
      loadInbox();
    } catch (e) { flash("error", errorText(e)); }
  }

  // ---------- render ----------
  function render() {
    const m = main();
    if (!m) return;
    const ext = EXT[S.screen];
    const html = ext ? ext.render() : { pickups: renderPickups, pick: renderPick, counter: renderCounter, customers: renderCustomers, returns: renderReturns, stock: renderStock, receive: renderReceive, send: renderSend, status: renderStatus, inbox: renderInbox }[S.screen]();
    m.innerHTML = html;
    if (ext && ext.bind) ext.bind(m);
    m.querySelectorAll(".resolve-form").forEach((f) => f.addEventListener("submit", resolveConflict));
    m.className = "screen-" + S.screen;
    const sendLink = $("#nav-send");
    if (sendLink) sendLink.hidden = !isManager();
    const cf = $("#count-form");
    if (cf) cf.addEventListener("submit", recordCount);
  }

  // ---------- wiring ----------
  document.addEventListener("click", (ev) => {
    const el = ev.target.closest("button, a");
    if (!el) return;
    if (EXT[S.screen] && EXT[S.screen].click(el)) return;
    if (el.dataset.lang) { setLang(el.dataset.lang); return; }
    if (el.dataset.key) {
      const target = pinTarget === "staff" ? $("#login-staff") : $("#login-pin");
      if (el.dataset.key === "back") target.value = target.value.slice(0, -1);
      else if (el.dataset.key === "clear") target.value = "";
      else if (target.value.length < (pinTarget === "staff" ? 16 : 8)) target.value += el.dataset.key;
      target.focus();
      return;
    }
    if (el.dataset.tab) { S.tab = el.dataset.tab; render(); focusScan(); return; }
    if (el.dataset.order) {
      const o = S.orders.find((x) => x.id === el.dataset.order);
      if (o && o.status === "ready") { S.counter = null; go("#/counter"); } else go("#/pick/" + encodeURIComponent(el.dataset.order));
      return;
    }
    if (el.dataset.go) { go(el.dataset.go); return; }
    if (el.id === "ready-btn") { markReady(); return; }
    if (el.dataset.arrival) { openArrival(el.dataset.arrival); return; }
    if (el.dataset.damaged && S.rcv) { const k = el.dataset.damaged; S.rcv.bad[k] = Math.min((S.rcv.bad[k] || 0) + 1, S.rcv.n[k] || 0); render(); return; }
    if (el.id === "receive-confirm") { confirmReceipt(); return; }
    if (el.dataset.dest && S.send) { S.send.to = el.dataset.dest; render(); return; }
    if (el.dataset.sstep && S.send) {
      const l = S.send.lines.find((x) => x.sku === el.dataset.sku);
      if (l) l.qty = Math.max(0, Math.min(l.max, l.qty + parseInt(el.dataset.sstep, 10)));
      S.send.lines = S.send.lines.filter((x) => x.qty > 0);
      render(); return;
    }
    if (el.id === "send-dispatch") { dispatchTransfer(); return; }
    if (el.dataset.note) { printNote(el.dataset.note); return; }
    if (el.dataset.ship) { dispatchShip(el.dataset.ship); return; }
    if (el.id === "handover-btn") { doHandover(); return; }
    if (el.dataset.action === "next-customer") { S.counter = null; render(); focusScan(); return; }
    if (el.dataset.customer) { openCustomer(el.dataset.customer); return; }
    if (el.dataset.step) {
      const sku = el.dataset.sku, l = S.cart.lines.find((x) => x.sku === sku);
      S.sell[sku] = Math.max(0, Math.min(l.available_here, (S.sell[sku] || 0) + parseInt(el.dataset.step, 10)));
      render(); return;
    }
    if (el.dataset.tender) { sell(el.dataset.tender); return; }
    if (el.dataset.returnSale) { const id = el.dataset.returnSale, st = el.dataset.returnStore; S.sale = null; go("#/returns"); setTimeout(() => openSale(id, st), 0); return; }
    if (el.dataset.rstep) {
      const l = S.sale.lines.find((x) => x.sku === el.dataset.sku);
      S.ret[l.sku] = Math.max(0, Math.min(l.returnable, (S.ret[l.sku] || 0) + parseInt(el.dataset.rstep, 10)));
      render(); return;
    }
    if (el.dataset.damaged) { S.damaged[el.dataset.damaged] = !S.damaged[el.dataset.damaged]; render(); return; }
    if (el.dataset.refund) { doReturn(el.dataset.refund); return; }
    if (el.dataset.consent && S.customer) { setConsent(el.dataset.consent, el.dataset.granted === "true"); return; }
  });
  function setLang(lang) {
    S.lang = lang;
    localStorage.setItem("sn.lang", lang);
    applyStatic();
    renderKeypad();
    renderWho();
    renderLink();
    if (S.me) render();
  }
  $("#lang-toggle").addEventListener("click", () => setLang(S.lang === "es" ? "en" : "es"));
  $("#logout").addEventListener("click", async () => { try { await api("DELETE", "/session"); } catch (e) { /* gone anyway */ } toLogin(); });
  $("#login-form").addEventListener("submit", doLogin);
  $("#login-staff").addEventListener("focus", () => { pinTarget = "staff"; });
  $("#login-pin").addEventListener("focus", () => { pinTarget = "pin"; });
  $("#login-staff").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); $("#login-pin").focus(); } });
  $("#scanbar").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("#scan"), code = input.value;
    input.value = "";
    handleScan(code, "page");
  });
  document.addEventListener("keydown", (ev) => {
    // A scanner types into whatever has focus: send stray keystrokes to the scan input.
    if ($("#shell").hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const a = document.activeElement;
    if (a && a.matches("input, textarea, select")) return;
    if (ev.key.length === 1) { $("#scan").focus(); }
  });
  document.addEventListener("click", () => setTimeout(focusScan, 0));
  window.addEventListener("hashchange", route);
  setInterval(() => { if (S.me && S.screen === "pickups") render(); }, 60000);

  for (const [name, make] of Object.entries(window.SN_SCREENS || {})) {
    EXT[name] = make({ S, t, esc, money, clock, api, flash, beep, errorText, render, go });
  }
  applyStatic();
  renderKeypad();
  api("GET", "/session").then((me) => { S.me = me; enterShell(); }).catch(() => toLogin());
})();
