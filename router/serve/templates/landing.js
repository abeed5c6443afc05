/* The landing page's behaviour. Its few settings come from the JSON block; the URLs it needs are
   read from the page's own links (never from location), so each appears only once in the page.

   Phone browsers: once the page has loaded, try the app; fall back to the web page only if, when the
   delay is over, the page is still visible, still focused and untouched. Anything that suggests the
   app took over (the page hidden, unloaded, or losing focus to an "Open in Taobao?" prompt) or that
   the person is using the page (a tap, a key) cancels the fallback for good: a false fallback, the
   classic bug, is worse than none, since the web link is always on the page. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("landing-config").textContent);
  var body = document.body;
  var timer = null;
  var stopped = false;

  function byId(id) { return document.getElementById(id); }
  function isHidden() { return document.visibilityState === "hidden" || document.hidden === true; }
  /* The fallback's state is kept on <body data-fallback>: armed, cancelled or fired (for tests and
     for anyone debugging a phone: it says why the page stayed or left). */
  function fallbackState(state) { body.setAttribute("data-fallback", state); }
  function stopFallback() {
    stopped = true;
    if (timer !== null) { clearTimeout(timer); timer = null; }
    fallbackState("cancelled");
  }
  function armFallback(web) {
    if (stopped || !web) { return; }
    if (timer !== null) { clearTimeout(timer); }
    fallbackState("armed");
    timer = setTimeout(function () {
      timer = null;
      if (!stopped && !isHidden() && document.hasFocus()) { fallbackState("fired"); window.location.replace(web); }
      else { fallbackState("cancelled"); }
    }, cfg.delay);
  }
  document.addEventListener("visibilitychange", function () { if (isHidden()) { stopFallback(); } });
  window.addEventListener("pagehide", stopFallback);
  window.addEventListener("blur", stopFallback);

  function countAttempt() {
    body.setAttribute("data-app-attempts", String(Number(body.getAttribute("data-app-attempts")) + 1));
  }
  var openApp = byId("open-app");
  var web = byId("web");
  if (cfg.mode === "phone" && openApp) {
    var tryApp = function () {
      countAttempt();
      armFallback(web && web.href);
      ["pointerdown", "touchstart", "keydown"].forEach(function (name) {
        document.addEventListener(name, stopFallback, { capture: true, once: true });
      });
      window.location.href = openApp.href;
    };
    /* A real tap on the link opens the app (and lets iOS follow a Universal Link); count it only. */
    openApp.addEventListener("click", countAttempt);
    /* Once the page has loaded and shows its button: a navigation started while the page is still
       being parsed leaves it half-loaded in some browsers. */
    if (document.readyState === "complete") { tryApp(); } else { window.addEventListener("load", tryApp); }
  }

  var copy = byId("copy");
  var field = byId("copy-text");
  var status = byId("copy-status");
  if (copy && field && status) {
    var report = function (ok) {
      status.textContent = ok ? cfg.text.copied : cfg.text.copyFailed;
      status.className = ok ? "status" : "status failed";
    };
    /* Old webviews: select the text and copy the selection. Within the tap, or browsers refuse. */
    var legacyCopy = function () {
      var ok = false;
      field.focus();
      field.select();
      try { field.setSelectionRange(0, field.value.length); } catch (e) { /* very old webviews */ }
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      copy.focus();
      return ok;
    };
    copy.addEventListener("click", function () {
      if (!(navigator.clipboard && window.isSecureContext)) { report(legacyCopy()); return; }
      var settled = false;
      var settle = function (ok) { if (!settled) { settled = true; report(ok); } };
      /* Some webviews never settle the promise: after a while, say so and leave the text selected. */
      var giveUp = setTimeout(function () { field.select(); settle(false); }, 1500);
      navigator.clipboard.writeText(field.value).then(
        function () { clearTimeout(giveUp); settle(true); },
        function () { clearTimeout(giveUp); settle(legacyCopy()); }
      );
    });
  }
})();
