// Brisk back office: two enhancements over pages that work without them.
// 1. An element with data-refresh="URL" reloads its contents from URL every
//    second while the page is visible (the dashboard's figures); taking the
//    attribute away stops it.
// 2. A form with data-preview="URL" posts itself there as it is edited and
//    shows the answer in the element named by data-preview-into (a
//    quotation's prices from the pricing engine).
(function () {
  "use strict";
  function refresh(element) {
    var etag = null;
    function tick() {
      var url = element.dataset.refresh;
      if (!url) return;
      if (document.visibilityState !== "visible") {
        setTimeout(tick, 1000);
        return;
      }
      var headers = etag ? { "If-None-Match": etag } : {};
      fetch(url, { headers: headers, credentials: "same-origin" })
        .then(function (response) {
          if (response.status !== 200) return null;
          etag = response.headers.get("ETag");
          return response.text();
        })
        .then(function (html) {
          if (html !== null) element.innerHTML = html;
        })
        .catch(function () { /* the server is away for a moment: next tick */ })
        .then(function () { setTimeout(tick, 1000); });
    }
    setTimeout(tick, 1000);
  }
  function preview(form) {
    var into = document.getElementById(form.dataset.previewInto);
    var timer = null;
    var sent = 0;
    function send() {
      var mine = ++sent;
      fetch(form.dataset.preview, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)).toString()
      })
        .then(function (response) { return response.text(); })
        .then(function (html) { if (mine === sent && into) into.innerHTML = html; })
        .catch(function () { /* keep the last preview */ });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(send, 200);
    });
    form.addEventListener("change", function () {
      clearTimeout(timer);
      timer = setTimeout(send, 50);
    });
  }
  document.querySelectorAll("[data-refresh]").forEach(refresh);
  document.querySelectorAll("form[data-preview]").forEach(preview);
})();
