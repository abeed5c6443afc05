/* The landing page's behaviour. Reads its settings from the JSON block (never from the URL).
   Phone browsers: try the app once; fall back to the web page only if this page is still visible
   when the delay is over (if the app opened, the page went hidden and the fallback is cancelled). */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("landing-config").textContent);
  var body = document.body;
  var timer = null;
  var left = false;

  function isHidden() { return document.visibilityState === "hidden" || document.hidden === true; }
  function cancelFallback() { if (timer !== null) { clearTimeout(timer); timer = null; } }
  function armFallback() {
    cancelFallback();
    left = false;
    if (!cfg.web) { return; }
    timer = setTimeout(function () {
      timer = null;
      if (!left && !isHidden()) { window.location.replace(cfg.web); }
    }, cfg.delay);
  }
  document.addEventListener("visibilitychange", function () { if (isHidden()) { left = true; cancelFallback(); } });
  window.addEventListener("pagehide", function () { left = true; cancelFallback(); });

  function countAttempt() {
    body.setAttribute("data-app-attempts", String(Number(body.getAttribute("data-app-attempts")) + 1));
  }
  function tryApp() {
    countAttempt();
    armFallback();
    window.location.href = cfg.app;
  }
  if (cfg.mode === "phone" && cfg.app) {
    var button = document.getElementById("open-app");
    if (button) {
      /* A real tap on the link opens the app (and lets iOS follow a Universal Link); only re-arm. */
      button.addEventListener("click", function () { countAttempt(); armFallback(); });
    }
    /* Once the page has loaded and shows its button: a navigation started while the page is still
       being parsed leaves it half-loaded in some browsers. */
    if (document.readyState === "complete") { tryApp(); } else { window.addEventListener("load", tryApp); }
  }

  var copy = document.getElementById("copy");
  var field = document.getElementById("copy-text");
  var status = document.getElementById("copy-status");
  if (copy && field && status) {
    var report = function (ok) {
      status.textContent = ok ? cfg.text.copied : cfg.text.copyFailed;
      status.className = ok ? "status" : "status failed";
    };
    var legacyCopy = function () {
      var ok = false;
      field.focus();
      field.select();
      try { field.setSelectionRange(0, field.value.length); } catch (e) { /* old webviews */ }
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      report(ok);
    };
    copy.addEventListener("click", function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(cfg.copy).then(function () { report(true); }, legacyCopy);
      } else {
        legacyCopy();
      }
    });
  }
})();
