/* The till's screen asks every two seconds whether its payment request was paid, and
   says so without a reload (the status region is aria-live, so a screen reader hears
   it). Without JavaScript, the page's "Actualiser" link does the same. */
(function () {
  "use strict";
  var box = document.querySelector("[data-status-url]");
  if (!box) { return; }
  var region = document.getElementById("request-status");
  var done = document.getElementById("request-done");
  var payer = document.getElementById("request-payer");
  var refund = document.getElementById("request-refund");
  var waiting = document.querySelectorAll("[data-while-open]");

  function show(data) {
    box.setAttribute("data-status", data.status);
    region.textContent = data.label;
    if (data.status === "open") { return; }
    for (var i = 0; i < waiting.length; i++) { waiting[i].hidden = true; }
    if (data.status === "paid" && done) {
      if (payer && data.payer) { payer.textContent = data.payer; }
      if (refund && data.refund_url) { refund.href = data.refund_url; }
      done.hidden = false;
    }
  }

  function tick() {
    fetch(box.getAttribute("data-status-url"), {
      credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store"
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (data) {
      if (data && data.status !== box.getAttribute("data-status")) { show(data); }
    }).catch(function () { /* offline a moment: try again */ }).then(function () {
      if (box.getAttribute("data-status") === "open") { window.setTimeout(tick, 2000); }
    });
  }
  window.setTimeout(tick, 2000);
})();
