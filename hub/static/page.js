// Refresh without flicker: fetch the same URL every few seconds and swap <main> only when it
// changed, and never while the user is typing in a field of the page. The ETag of what is shown
// goes with every fetch, so an unchanged page costs a 304 and no body. Focus stays where it was.
(function () {
  var busy = false, etag = null;
  setInterval(function () {
    var focused = document.activeElement;
    if (busy || document.hidden || (focused && /INPUT|SELECT|TEXTAREA/.test(focused.tagName))) return;
    busy = true;
    var headers = etag ? { "If-None-Match": etag } : {};
    fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (r) {
        if (r.status !== 200) return null;
        etag = r.headers.get("ETag");
        return r.text();
      })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var current = document.querySelector("main");
        if (!fresh || !current || fresh.innerHTML === current.innerHTML) return;
        var focused = document.activeElement, path = null;
        if (focused && focused.getAttribute && focused.getAttribute("href")) path = focused.getAttribute("href");
        current.replaceWith(fresh);
        if (path) {
          var again = fresh.querySelector('a[href="' + CSS.escape(path) + '"]');
          if (again) again.focus();
        }
      })
      .catch(function () {})
      .finally(function () { busy = false; });
  }, REFRESH_MS);
})();
