(function () {
  "use strict";
  // Sortable tables: numbers sort by their data-v value, text by its content.
  function key(td) {
    if (!td) return "";
    var v = td.getAttribute("data-v");
    return v !== null ? parseFloat(v) : td.textContent.trim().toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var ths = table.querySelectorAll("thead th");
    ths.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        ths.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var c = (typeof x === "number" && typeof y === "number") ? x - y
            : String(x).localeCompare(String(y));
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  // Tooltips for page cells: the title text, shown at once and kept on screen. The title
  // attribute stays the fallback where the script does not run.
  var tip = document.createElement("div");
  tip.id = "tip";
  document.body.appendChild(tip);
  function place(ev) {
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) x = ev.clientX - r.width - 14;
    if (y + r.height > window.innerHeight - 8) y = ev.clientY - r.height - 14;
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  document.querySelectorAll(".pg[title],.mp[title]").forEach(function (el) {
    el.setAttribute("data-tip", el.getAttribute("title"));
    el.removeAttribute("title");
    el.addEventListener("mouseenter", function (ev) {
      tip.textContent = el.getAttribute("data-tip");
      tip.style.display = "block";
      place(ev);
    });
    el.addEventListener("mousemove", place);
    el.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  });
  document.body.setAttribute("data-ready", "1");
})();
