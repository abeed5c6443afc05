/* The landing page's behaviour. Its few settings come from the JSON block; the URLs it needs are
   read from the page's own links (never from location), so each appears only once in the page.

   Phone browsers: once the page has loaded, try the app; fall back to the web page only if, when the
   delay is over, the page is still visible, still focused and untouched. Anything that suggests the
   app took over (the page hidden, unloaded, or losing focus to an "Open in Taobao?" prompt) or that
   the person is using the page (a tap, a key) cancels the fallback for good: a false fallback, the
   classic bug, is worse than none, since the web link is always on the page.

   What the person did goes back to the router as outcome beacons (router/serve/outcomes.py). */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("landing-config").textContent);
  var body = document.body;
  var timer = null;
  var stopped = false;
  var attemptedAt = 0;
  var APP_LEFT_MS = 3000; /* hidden this soon after an app attempt: the app most likely opened */

  /* Outcome beacons: what the person did, each event once per page, to the router's own origin (the CSP
     allows connect-src 'self' and nothing else). sendBeacon outlives the page; fetch with keepalive where
     it is missing; without either, nothing is sent and nothing else changes. */
  var told = {};
  function tell(event) {
    if (!cfg.token || !cfg.beacon || told[event]) { return; }
    told[event] = true;
    var data = "t=" + encodeURIComponent(cfg.token) + "&e=" + encodeURIComponent(event);
    try {
      if (navigator.sendBeacon &&
          navigator.sendBeacon(cfg.beacon, new Blob([data], { type: "application/x-www-form-urlencoded" }))) {
        return;
      }
    } catch (e) { /* fall through to fetch */ }
    try {
      if (window.fetch) {
        fetch(cfg.beacon, { method: "POST", body: data, keepalive: true, credentials: "same-origin",
                            headers: { "Content-Type": "application/x-www-form-urlencoded" } });
      }
    } catch (e) { /* an outcome is not worth an error */ }
  }
  /* The token goes into the page's own address, the rest of it kept as it was: "open in the browser"
     opens this address, and the router then knows that click escaped (its second jump). */
  if (cfg.token && window.history && history.replaceState) {
    try {
      var here = window.location.href.split("#")[0];
      var mark = here.indexOf("?");
      var params = (mark < 0 ? "" : here.slice(mark + 1)).split("&").filter(function (part) {
        return part && part.indexOf("ct=") !== 0;
      });
      params.push("ct=" + cfg.token);
      history.replaceState(history.state, "", (mark < 0 ? here : here.slice(0, mark)) + "?" + params.join("&") +
                           window.location.hash);
    } catch (e) { /* the address stays as it was */ }
  }
  tell("shown");
  /* Hidden soon after an app attempt: the app came to the front. Unless the page itself is leaving for the
     web or the store (the fallback, a tap), which hides it too. */
  var goingElsewhere = false;
  function leaving() {
    if (!goingElsewhere && attemptedAt && Date.now() - attemptedAt <= APP_LEFT_MS) { tell("app_left"); }
  }

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
      if (!stopped && !isHidden() && document.hasFocus()) {
        fallbackState("fired");
        goingElsewhere = true;
        tell("fallback_web");
        window.location.replace(web);
      }
      else { fallbackState("cancelled"); }
    }, cfg.delay);
  }
  document.addEventListener("visibilitychange", function () { if (isHidden()) { leaving(); stopFallback(); } });
  window.addEventListener("pagehide", function () { leaving(); stopFallback(); });
  window.addEventListener("blur", stopFallback);

  function countAttempt() {
    body.setAttribute("data-app-attempts", String(Number(body.getAttribute("data-app-attempts")) + 1));
    attemptedAt = Date.now();
    tell("app_attempt");
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

  if (web) { web.addEventListener("click", function () { goingElsewhere = true; tell("web_tap"); }); }
  var download = byId("download");
  if (download) { download.addEventListener("click", function () { goingElsewhere = true; tell("store_tap"); }); }

  var copy = byId("copy");
  var field = byId("copy-text");
  var status = byId("copy-status");
  if (copy && field && status) {
    var report = function (ok) {
      if (ok) { tell("copied"); }
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
