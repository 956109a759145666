// Refresh without flicker: fetch the same URL every few seconds and swap <main> only when it
// changed, and never while the user is typing in a field of the page.
(function () {
  var busy = false;
  setInterval(function () {
    var focused = document.activeElement;
    if (busy || document.hidden || (focused && /INPUT|SELECT|TEXTAREA/.test(focused.tagName))) return;
    busy = true;
    fetch(location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var current = document.querySelector("main");
        if (fresh && current && fresh.innerHTML !== current.innerHTML) current.replaceWith(fresh);
      })
      .catch(function () {})
      .finally(function () { busy = false; });
  }, REFRESH_MS);
})();
