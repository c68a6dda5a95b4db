// crowdquant leaderboard pages: sortable tables and self-submitting selects. No dependencies.
(function () {
  "use strict";

  function cellValue(row, index, kind) {
    var cell = row.cells[index];
    if (!cell) return null;
    if (kind === "num") {
      var raw = cell.getAttribute("data-v");
      if (raw === null || raw === "" || raw === "None") return null;
      var value = parseFloat(raw);
      return isNaN(value) ? null : value;
    }
    return cell.textContent.trim().toLowerCase();
  }

  function sortTable(table, index, kind, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    if (rows.length < 2) return;
    var keyed = rows.map(function (row, position) {
      return { row: row, value: cellValue(row, index, kind), position: position };
    });
    keyed.sort(function (a, b) {
      if (a.value === null && b.value === null) return a.position - b.position;
      if (a.value === null) return 1;   // empty cells stay at the bottom either way
      if (b.value === null) return -1;
      var order = a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
      if (descending) order = -order;
      return order || a.position - b.position;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
  }

  function makeSortable(table) {
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (th, index) {
      var button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", function () {
        var kind = th.getAttribute("data-kind") || "text";
        var current = th.getAttribute("aria-sort");
        // a first click shows the best first: largest scores, smallest ranks and losses, text A to Z
        var first = th.getAttribute("data-first") || (kind === "num" ? "desc" : "asc");
        var descending = current === "none" || !current ? first === "desc" : current === "ascending";
        Array.prototype.forEach.call(headers, function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortTable(table, index, kind, descending);
      });
    });
  }

  function autoSubmit(select) {
    select.addEventListener("change", function () {
      if (select.form) select.form.submit();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
    Array.prototype.forEach.call(document.querySelectorAll("select[data-autosubmit]"), autoSubmit);
  });
})();
