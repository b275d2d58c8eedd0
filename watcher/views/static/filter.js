// The static site's index filters its table in the page: no server, no library.
(function () {
  "use strict";
  var input = document.getElementById("filter");
  var count = document.getElementById("count");
  if (!input) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#trials tbody tr"));
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var text = row.getAttribute("data-search") || "";
      var keep = words.every(function (w) { return text.indexOf(w) !== -1; });
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    count.textContent = shown + " trials";
  });
}());
