/*
 * Lookalike widget: an item's look-alikes as a row of linked photos on a shop's own product page.
 *
 *   <div data-lookalike-item="ITEM-ID"></div>
 *   <script src="https://LOOKALIKE-HOST/widget.js" async></script>
 *
 * Optional attributes on the div: data-lookalike-k (how many, 1-24, default 6) and
 * data-lookalike-heading (the row's heading, default "You may also like"; empty: none).
 * The server must allow the shop page's origin: `lookalike serve --cors-origin https://shop.example`.
 * Each photo links to the item's `url` and shows its `title` (set at import or with PATCH
 * /api/v1/items/{id}); an item without a url is shown unlinked.
 *
 * Plain ES2017, no dependencies, nothing global but `window.Lookalike`. The row lives in a
 * shadow root, so the shop's CSS and the widget's never touch each other. Divs added later (a
 * single-page shop) are rendered with `Lookalike.render(div)` or `Lookalike.scan()`.
 */
(function () {
  'use strict';
  if (window.Lookalike) return; // the script was included twice

  var script = document.currentScript;
  var apiBase = new URL('.', script ? script.src : location.href).href;
  var MAX_K = 24;

  function kOf(el) {
    var k = parseInt(el.getAttribute('data-lookalike-k') || '6', 10);
    return isFinite(k) ? Math.min(MAX_K, Math.max(1, k)) : 6;
  }

  var STYLE =
    ':host{display:block;font:14px/1.4 system-ui,sans-serif;color:inherit}' +
    'h2{font-size:1.05em;font-weight:600;margin:0 0 .5em}' +
    'ul{display:flex;gap:12px;overflow-x:auto;list-style:none;margin:0;padding:0 0 6px}' +
    'li{flex:0 0 auto;width:140px}' +
    'a{color:inherit;text-decoration:none;display:block}' +
    'a:hover .t,a:focus-visible .t{text-decoration:underline}' +
    'img{width:140px;height:180px;object-fit:cover;border-radius:6px;background:#f2f2f2;display:block}' +
    '.t{margin-top:4px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}';

  function card(hit) {
    var meta = hit.metadata || {};
    var title = meta.title || hit.id;
    var li = document.createElement('li');
    var link = document.createElement(meta.url ? 'a' : 'div');
    if (meta.url) link.href = meta.url;
    var img = document.createElement('img');
    img.src = new URL(hit.image_url, apiBase).href;
    img.alt = title;
    img.loading = 'lazy';
    var caption = document.createElement('div');
    caption.className = 't';
    caption.textContent = title;
    link.appendChild(img);
    link.appendChild(caption);
    li.appendChild(link);
    return li;
  }

  function show(el, results) {
    var root = el.shadowRoot || el.attachShadow({ mode: 'open' });
    root.textContent = '';
    if (!results.length) return;
    var style = document.createElement('style');
    style.textContent = STYLE;
    root.appendChild(style);
    var heading = el.getAttribute('data-lookalike-heading');
    if (heading === null) heading = 'You may also like';
    if (heading) {
      var h = document.createElement('h2');
      h.textContent = heading;
      root.appendChild(h);
    }
    var list = document.createElement('ul');
    list.setAttribute('aria-label', heading || 'Similar items');
    results.forEach(function (hit) {
      list.appendChild(card(hit));
    });
    root.appendChild(list);
    el.setAttribute('data-lookalike-state', 'ready');
  }

  // Renders one div; resolves when done. A failure leaves the div empty (a product page must not
  // break because the look-alikes could not be had) and says why in the console and in
  // data-lookalike-state="error".
  function render(el) {
    var id = el.getAttribute('data-lookalike-item');
    if (!id) return Promise.resolve();
    el.setAttribute('data-lookalike-state', 'loading');
    var url = apiBase + 'api/v1/items/' + encodeURIComponent(id) + '/similar?k=' + kOf(el);
    return fetch(url, { credentials: 'omit' })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error((body && body.error && body.error.message) || 'HTTP ' + response.status);
          return body;
        });
      })
      .then(function (body) {
        show(el, body.results || []);
      })
      .catch(function (error) {
        el.setAttribute('data-lookalike-state', 'error');
        console.warn('lookalike: no look-alikes for item "' + id + '": ' + error.message);
      });
  }

  function scan() {
    var divs = document.querySelectorAll('[data-lookalike-item]:not([data-lookalike-state])');
    return Promise.all(Array.prototype.map.call(divs, render));
  }

  window.Lookalike = { render: render, scan: scan };
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', scan);
  } else {
    scan();
  }
})();
