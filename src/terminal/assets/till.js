// The till screen (DESIGN.md §18): the cash drawer (open with a float, cash in/out, X report,
// close with a blind count and the Z report), a ticket scanned line by line with the
// promotions that apply and manual discounts (a manager's PIN on the same screen above the
// associate's limit), and parked tickets. Registered with app.js through SN_SCREENS; its
// strings extend I18N in both languages.
(function () {
  "use strict";
  Object.assign(I18N.es, {
    "nav.till": "Caja",
    "scan.ph.till": "Escanee un artículo para añadirlo al ticket",
    "till.title": "Caja",
    "till.at": "Caja {till}",
    "till.switch": "Cambiar a la caja",
    "till.tills": "Cajas de la tienda",
    "till.till_open": "{till}: abierta desde {when}, esperado {expected}",
    "till.till_closed": "{till}: cerrada",
    "till.closed": "La caja está cerrada. Ábrala con el fondo inicial para cobrar en efectivo.",
    "till.float": "Fondo inicial (€)",
    "till.open": "Abrir caja",
    "till.opened": "Caja abierta desde {when} · fondo {float}",
    "till.expected": "Efectivo esperado",
    "till.stale": "La caja sigue abierta desde {when}: ciérrela con el arqueo antes de seguir.",
    "till.stale_badge": "Abierta desde otro día",
    "till.move_in": "Entrada",
    "till.move_out": "Salida",
    "till.amount": "Importe (€)",
    "till.reason": "Motivo",
    "till.x": "Informe X",
    "till.x_print": "Imprimir informe X",
    "till.x_printed": "Informe X enviado a la impresora",
    "till.counted": "Efectivo contado (€)",
    "till.close": "Cerrar caja (Z)",
    "till.ticket": "Ticket",
    "till.empty": "Escanee artículos para empezar un ticket.",
    "till.discount": "Dto. %",
    "till.ticket_discount": "Descuento del ticket %",
    "till.promo": "Promoción {name}",
    "till.total_list": "Total antes de promociones",
    "till.cash": "Cobrar en efectivo",
    "till.card": "Cobrar con tarjeta",
    "till.park": "Aparcar ticket",
    "till.parked": "Tickets aparcados",
    "till.resume": "Recuperar",
    "till.parked_ok": "Ticket aparcado",
    "till.sold": "Venta {id}: {total} (descuentos {discount})",
    "till.manager": "Descuento por encima del {n} %: autorización del encargado",
    "till.manager_staff": "Nº de encargado",
    "till.manager_pin": "PIN del encargado",
    "till.approve": "Autorizar y cobrar",
    "till.report": "Informe {kind}",
    "till.r.float": "Fondo inicial",
    "till.r.sales": "Ventas",
    "till.r.returns": "Devoluciones",
    "till.r.discounts": "Descuentos",
    "till.r.in": "Entradas",
    "till.r.out": "Salidas",
    "till.r.cash": "Efectivo",
    "till.r.card": "Tarjeta",
    "till.r.vat": "IVA {rate} %: base {base}, cuota {vat}",
    "till.r.invoices": "Facturas {first} … {last}",
    "till.r.expected": "Esperado",
    "till.r.counted": "Contado",
    "till.r.difference": "Diferencia",
    "err.no_cash_session": "No hay caja abierta: ábrala para cobrar en efectivo",
    "err.session_open": "Ya hay una caja abierta",
    "err.unknown_till": "Esta tienda no tiene esa caja",
    "err.invalid_discount": "El descuento debe estar entre 0 y 100 %",
    "err.invalid_reason": "Indique el motivo del movimiento",
    "err.manager_required": "Hace falta la autorización de un encargado",
  });
  Object.assign(I18N.en, {
    "nav.till": "Till",
    "scan.ph.till": "Scan an item to add it to the ticket",
    "till.title": "Till",
    "till.at": "Till {till}",
    "till.switch": "Move to till",
    "till.tills": "The store's tills",
    "till.till_open": "{till}: open since {when}, expected {expected}",
    "till.till_closed": "{till}: closed",
    "till.closed": "The drawer is closed. Open it with a float to take cash.",
    "till.float": "Float (€)",
    "till.open": "Open drawer",
    "till.opened": "Drawer open since {when} · float {float}",
    "till.expected": "Cash expected",
    "till.stale": "The drawer has been open since {when}: close it with a count before going on.",
    "till.stale_badge": "Open since another day",
    "till.move_in": "Cash in",
    "till.move_out": "Cash out",
    "till.amount": "Amount (€)",
    "till.reason": "Reason",
    "till.x": "X report",
    "till.x_print": "Print X report",
    "till.x_printed": "X report sent to the printer",
    "till.counted": "Cash counted (€)",
    "till.close": "Close drawer (Z)",
    "till.ticket": "Ticket",
    "till.empty": "Scan items to start a ticket.",
    "till.discount": "Disc. %",
    "till.ticket_discount": "Ticket discount %",
    "till.promo": "Promotion {name}",
    "till.total_list": "Total before promotions",
    "till.cash": "Take cash",
    "till.card": "Take card",
    "till.park": "Park ticket",
    "till.parked": "Parked tickets",
    "till.resume": "Resume",
    "till.parked_ok": "Ticket parked",
    "till.sold": "Sale {id}: {total} (discounts {discount})",
    "till.manager": "Discount over {n} %: a manager's approval",
    "till.manager_staff": "Manager number",
    "till.manager_pin": "Manager PIN",
    "till.approve": "Approve and charge",
    "till.report": "{kind} report",
    "till.r.float": "Float",
    "till.r.sales": "Sales",
    "till.r.returns": "Returns",
    "till.r.discounts": "Discounts",
    "till.r.in": "Cash in",
    "till.r.out": "Cash out",
    "till.r.cash": "Cash",
    "till.r.card": "Card",
    "till.r.vat": "VAT {rate} %: base {base}, VAT {vat}",
    "till.r.invoices": "Invoices {first} … {last}",
    "till.r.expected": "Expected",
    "till.r.counted": "Counted",
    "till.r.difference": "Difference",
    "err.no_cash_session": "No drawer is open: open it to take cash",
    "err.session_open": "A drawer is already open",
    "err.unknown_till": "This store has no such till",
    "err.invalid_discount": "A discount must be 0 to 100 %",
    "err.invalid_reason": "Give the movement a reason",
    "err.manager_required": "A manager's approval is needed",
  });

  window.SN_SCREENS = window.SN_SCREENS || {};
  window.SN_SCREENS.till = function (sn) {
    const { S, t, esc, money, api, flash, beep, errorText, render } = sn;
    const T = (S.till = { lines: [], ticketPct: 0, session: null, tills: [], promos: [], parked: [], report: null, approval: null, last: null });
    const cents = (v) => Math.round(parseFloat(String(v || "0").replace(",", ".")) * 100);
    const when = (ms) => new Date(ms).toLocaleString(S.lang === "es" ? "es-ES" : "en-GB", { dateStyle: "short", timeStyle: "short" });
    const input = (sel) => document.querySelector(sel);

    async function load() {
      try {
        const [cur, promos, parked, tills] = await Promise.all([api("GET", "/cash/sessions/current"), api("GET", "/promotions"), api("GET", "/sales/parked"), api("GET", "/cash/tills")]);
        T.session = cur.session; T.promos = promos; T.parked = parked; T.tills = tills;
      } catch (e) { flash("error", errorText(e)); }
      render();
    }
    async function scan(code) {
      try {
        const p = await api("GET", "/stock/" + encodeURIComponent(code));
        const l = T.lines.find((x) => x.sku === p.sku);
        if (l) l.qty += 1; else T.lines.push({ sku: p.sku, name: p.name, category: p.category, unit_cents: p.price_cents, qty: 1, discount_pct: 0 });
        beep(true);
      } catch (e) { beep(false); flash("error", errorText(e)); }
      render();
    }
    // The promotion shown beside a line while scanning: the highest priority of those naming
    // its sku or its category (the server decides ties by the discount when it prices the sale).
    function promoFor(l) {
      const fits = T.promos.filter((p) => p.skus.includes(l.sku) || (l.category && (p.categories || []).includes(l.category)));
      return fits.sort((a, b) => b.priority - a.priority)[0];
    }
    function ticketBody() {
      return { lines: T.lines.map((l) => (l.discount_pct ? { sku: l.sku, qty: l.qty, discount_pct: l.discount_pct } : { sku: l.sku, qty: l.qty })), ticket_discount_pct: T.ticketPct || undefined };
    }
    async function charge(tender) {
      if (!T.lines.length) { beep(false); return; }
      const body = Object.assign(ticketBody(), { tender });
      if (T.approval && T.approval.staff) body.approval = { staff: T.approval.staff, pin: T.approval.pin };
      try {
        const r = await api("POST", "/sales", body);
        beep(true);
        T.last = r; T.lines = []; T.ticketPct = 0; T.approval = null;
        flash("ok", t("till.sold", { id: r.id, total: money(r.total_cents), discount: money(r.discount_cents) }));
        await load();
      } catch (e) {
        beep(false);
        if (e.body && e.body.error === "manager_required" && !(T.approval && T.approval.staff)) {
          T.approval = { tender, limit: e.body.limit_pct, staff: "", pin: "" };
          render();
          const box = document.querySelector("[data-approval]");
          if (box) { box.scrollIntoView({ block: "center" }); document.querySelector("#till-mgr").focus(); }
        } else { T.approval = null; flash("error", errorText(e)); render(); }
      }
    }
    async function post(path, body, done) {
      try { const r = await api("POST", path, body); beep(true); if (done) done(r); await load(); } catch (e) { beep(false); flash("error", errorText(e)); }
    }
    function reportHtml(r, kind) {
      const row = (k, v) => "<tr><td>" + esc(k) + '</td><td class="num">' + money(v) + "</td></tr>";
      let rows = row(t("till.r.float"), r.float_cents) + row(t("till.r.sales"), r.sales_cents) + row(t("till.r.returns"), -r.returns_cents) +
        row(t("till.r.discounts"), r.discounts_cents) + row(t("till.r.in"), r.cash_in_cents) + row(t("till.r.out"), -r.cash_out_cents);
      for (const [k, v] of Object.entries(r.by_tender || {})) rows += row(t("till.r." + k), v);
      rows += (r.vat || []).map((v) => '<tr><td colspan="2" class="muted">' + esc(t("till.r.vat", { rate: v.vat_bp / 100, base: money(v.base_cents), vat: money(v.vat_cents) })) + "</td></tr>").join("");
      if (r.first_invoice) rows += '<tr><td colspan="2" class="muted">' + esc(t("till.r.invoices", { first: r.first_invoice, last: r.last_invoice })) + "</td></tr>";
      rows += row(t("till.r.expected"), r.expected_cents);
      if (r.counted_cents !== null && r.counted_cents !== undefined) rows += row(t("till.r.counted"), r.counted_cents) + row(t("till.r.difference"), r.difference_cents);
      return '<div class="card" data-report="' + kind + '"><h2 class="section">' + esc(t("till.report", { kind }) + (S.me && S.me.tills && S.me.tills.length > 1 ? " · " + r.till : "")) + '</h2><table class="cart"><tbody>' + rows + "</tbody></table></div>";
    }
    function drawerHtml() {
      const s = T.session;
      if (!s) {
        return '<div class="card" data-drawer="closed"><p class="lead">' + esc(t("till.closed")) + '</p><label class="field">' + esc(t("till.float")) +
          ' <input id="till-float" inputmode="decimal" value="' + (S.lang === "es" ? "150,00" : "150.00") + '"></label><button class="btn btn-success btn-xl" data-till="open">' + esc(t("till.open")) + "</button></div>";
      }
      return '<div class="card" data-drawer="open"><div class="screen-head"><strong>' + esc(t("till.opened", { when: when(s.opened_at), float: money(s.float_cents) })) + "</strong>" +
        (s.stale ? '<span class="badge badge-warn" data-stale>' + esc(t("till.stale_badge")) + "</span>" : "") +
        '<span class="grow"></span><span class="muted">' + esc(t("till.expected")) + ' <strong data-expected>' + money(s.expected_cents) + "</strong></span></div>" +
        '<div class="till-row"><input id="till-move-cents" inputmode="decimal" placeholder="' + esc(t("till.amount")) + '"><input id="till-move-reason" placeholder="' + esc(t("till.reason")) + '">' +
        '<button class="btn btn-primary" data-till="in">' + esc(t("till.move_in")) + '</button><button class="btn btn-primary" data-till="out">' + esc(t("till.move_out")) + "</button>" +
        '<button class="btn btn-primary" data-till="x">' + esc(t("till.x")) + "</button>" +
        '<button class="btn btn-primary" data-till="xprint">' + esc(t("till.x_print")) + "</button></div>" +
        '<div class="till-row"><input id="till-counted" inputmode="decimal" placeholder="' + esc(t("till.counted")) + '"><button class="btn btn-success" data-till="close">' + esc(t("till.close")) + "</button></div></div>";
    }
    function ticketHtml() {
      const rows = T.lines.map((l, i) => {
        const p = promoFor(l);
        return "<tr><td><div class=\"pl-name\">" + esc(l.name) + '</div><div class="muted small">' + esc(l.sku) + (p ? ' <span class="badge badge-placed" data-promo>' + esc(t("till.promo", { name: p.name })) + "</span>" : "") + "</div></td>" +
          '<td><div class="stepper"><button class="step" data-tq="-1" data-i="' + i + '">−</button><span class="step-val">' + l.qty + '</span><button class="step" data-tq="1" data-i="' + i + '">+</button></div></td>' +
          '<td class="num">' + money(l.unit_cents * l.qty) + '</td><td><input class="till-pct" data-pct="' + i + '" inputmode="decimal" value="' + (l.discount_pct || "") + '" placeholder="' + esc(t("till.discount")) + '"></td></tr>';
      }).join("");
      const list = T.lines.reduce((a, l) => a + l.unit_cents * l.qty, 0);
      const a = T.approval;
      const approval = a ? '<div class="card" data-approval><strong>' + esc(t("till.manager", { n: a.limit })) + '</strong><div class="till-row"><input id="till-mgr" inputmode="numeric" placeholder="' + esc(t("till.manager_staff")) + '"><input id="till-mgr-pin" type="password" inputmode="numeric" placeholder="' + esc(t("till.manager_pin")) + '"><button class="btn btn-success" data-till="approve">' + esc(t("till.approve")) + "</button></div></div>" : "";
      const table = T.lines.length ? '<table class="cart"><tbody>' + rows + "</tbody></table>" : '<div class="empty">' + esc(t("till.empty")) + "</div>";
      const last = T.last ? '<div class="card" data-last-sale><strong>' + esc(t("till.sold", { id: T.last.id, total: money(T.last.total_cents), discount: money(T.last.discount_cents) })) + '</strong><table class="cart"><tbody>' +
        T.last.lines.map((l) => "<tr><td>" + esc(l.name || l.sku) + (l.promotion ? ' <span class="badge badge-placed">' + esc(l.promotion) + "</span>" : "") + '</td><td class="num">' + l.qty + " × " + money(l.unit_cents) + '</td><td class="num">' + (l.discount_cents ? "−" + money(l.discount_cents) : "") + "</td></tr>").join("") + "</tbody></table></div>" : "";
      return '<div class="customer-grid"><div class="card"><h2 class="section">' + esc(t("till.ticket")) + "</h2>" + table + approval + "</div>" +
        '<aside class="card summary"><label class="field">' + esc(t("till.ticket_discount")) + ' <input id="till-ticket-pct" inputmode="decimal" value="' + (T.ticketPct || "") + '"></label>' +
        '<div class="total"><span class="muted">' + esc(t("till.total_list")) + '</span><span class="total-val">' + money(list) + "</span></div>" +
        '<button class="btn btn-success btn-block btn-xl" data-till="cash"' + (T.lines.length ? "" : " disabled") + ">" + esc(t("till.cash")) + "</button>" +
        '<button class="btn btn-primary btn-block btn-xl" data-till="card"' + (T.lines.length ? "" : " disabled") + ">" + esc(t("till.card")) + "</button>" +
        '<button class="btn btn-block" data-till="park"' + (T.lines.length ? "" : " disabled") + ">" + esc(t("till.park")) + "</button></aside></div>" + last;
    }
    function parkedHtml() {
      if (!T.parked.length) return "";
      return '<div class="card" data-parked><h2 class="section">' + esc(t("till.parked")) + "</h2>" + T.parked.map((p) =>
        '<div class="till-row"><span class="grow">' + esc(p.label || p.id) + ' <span class="muted small">' + esc(when(p.parked_at)) + " · " + p.lines.length + '</span></span><button class="btn btn-primary" data-resume="' + esc(p.id) + '">' + esc(t("till.resume")) + "</button></div>").join("") + "</div>";
    }
    // Several tills: this terminal's till in the title, a switch to another, and every
    // drawer's state (a manager sees one left open at another till).
    function tillsHtml() {
      if (T.tills.length < 2) return "";
      const items = T.tills.map((x) => {
        const s = x.session;
        const text = s ? t("till.till_open", { till: x.till, when: when(s.opened_at), expected: money(s.expected_cents) }) : t("till.till_closed", { till: x.till });
        const mine = x.till === S.me.till;
        return '<div class="till-row" data-till-row="' + esc(x.till) + '"><span class="grow">' + (mine ? "<strong>" + esc(text) + "</strong>" : esc(text)) +
          (s && s.stale ? ' <span class="badge badge-warn">' + esc(t("till.stale_badge")) + "</span>" : "") + "</span>" +
          (mine ? "" : '<button class="btn" data-switch-till="' + esc(x.till) + '">' + esc(t("till.switch") + " " + x.till) + "</button>") + "</div>";
      }).join("");
      return '<div class="card" data-tills><h2 class="section">' + esc(t("till.tills")) + "</h2>" + items + "</div>";
    }
    function renderTill() {
      const title = S.me && S.me.tills && S.me.tills.length > 1 ? t("till.at", { till: S.me.till }) : t("till.title");
      return '<div class="screen-head"><h1 data-till-title>' + esc(title) + "</h1></div>" + (T.report ? reportHtml(T.report.r, T.report.kind) : "") + drawerHtml() + tillsHtml() + ticketHtml() + parkedHtml();
    }
    function bind(m) {
      m.querySelectorAll("[data-pct]").forEach((el) => el.addEventListener("change", () => { T.lines[+el.dataset.pct].discount_pct = parseFloat(el.value.replace(",", ".")) || 0; }));
      const tp = m.querySelector("#till-ticket-pct");
      if (tp) tp.addEventListener("change", () => { T.ticketPct = parseFloat(tp.value.replace(",", ".")) || 0; });
    }
    function click(el) {
      if (el.dataset.tq) {
        const l = T.lines[+el.dataset.i];
        l.qty += parseInt(el.dataset.tq, 10);
        if (l.qty <= 0) T.lines.splice(+el.dataset.i, 1);
        render(); return true;
      }
      if (el.dataset.resume) {
        post("/sales/parked/" + encodeURIComponent(el.dataset.resume) + "/resume", {}, (r) => {
          T.lines = r.lines.map((l) => ({ sku: l.sku, name: l.sku, unit_cents: 0, qty: l.qty, discount_pct: l.discount_pct || 0 }));
          T.ticketPct = r.ticket_discount_pct || 0;
          T.lines.forEach((l) => api("GET", "/stock/" + encodeURIComponent(l.sku)).then((p) => { l.name = p.name; l.unit_cents = p.price_cents; l.category = p.category; render(); }).catch(() => {}));
        });
        return true;
      }
      if (el.dataset.switchTill) {
        api("PUT", "/session/till", { till: el.dataset.switchTill }).then((me) => {
          S.me = Object.assign(S.me, me); localStorage.setItem("sn.till", me.till); T.report = null;
          input("#store-name").textContent = me.store + " · " + me.till;
          load();
        }).catch((e) => flash("error", errorText(e)));
        return true;
      }
      const a = el.dataset.till;
      if (!a) return false;
      if (a === "open") post("/cash/sessions", { float_cents: cents(input("#till-float").value) });
      else if (a === "in" || a === "out") post("/cash/sessions/current/movements", { kind: a, cents: cents(input("#till-move-cents").value), reason: input("#till-move-reason").value });
      else if (a === "x") api("GET", "/cash/sessions/current/report").then((r) => { T.report = { r, kind: "X" }; render(); }).catch((e) => flash("error", errorText(e)));
      else if (a === "xprint") post("/cash/sessions/current/report/print", undefined, (r) => { T.report = { r, kind: "X" }; flash("ok", t("till.x_printed")); });
      else if (a === "close") post("/cash/sessions/current/close", { counted_cents: cents(input("#till-counted").value) }, (r) => { T.report = { r, kind: "Z" }; });
      else if (a === "cash" || a === "card") charge(a);
      else if (a === "approve") { T.approval.staff = input("#till-mgr").value.trim(); T.approval.pin = input("#till-mgr-pin").value; charge(T.approval.tender); }
      else if (a === "park") post("/sales/parked", ticketBody(), () => { T.lines = []; T.ticketPct = 0; flash("ok", t("till.parked_ok")); });
      return true;
    }
    return { load, scan, render: renderTill, bind, click };
  };
})();
