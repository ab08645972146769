// The report builder: find a metric by typing, show its definition, and redraw the preview as the form
// changes (the server draws it from the same chart spec the bots send). Without this script the form still
// works: "Preview" redraws the page.
(function () {
  "use strict";
  var form = document.getElementById("report-builder");
  if (!form) return;
  var metric = document.getElementById("report-metric");
  var search = document.getElementById("metric-search");
  var definition = document.getElementById("metric-definition");
  var preview = document.getElementById("preview");

  function showDefinition() {
    var chosen = metric.options[metric.selectedIndex];
    definition.textContent = chosen ? chosen.getAttribute("data-description") : "";
  }

  search.addEventListener("input", function () {
    var words = search.value.toLowerCase().trim();
    var first = null;
    var named = null; // the first whose name has the words: "sent" is Messages sent, not a description's
    var current = metric.options[metric.selectedIndex];
    var currentNamed = false;
    Array.prototype.forEach.call(metric.options, function (option) {
      var label = option.textContent.toLowerCase();
      var text = label + " " + (option.getAttribute("data-description") || "").toLowerCase();
      var shown = !words || text.indexOf(words) !== -1;
      option.hidden = !shown;
      if (shown && first === null) first = option;
      if (words && label.indexOf(words) !== -1) {
        if (named === null) named = option;
        if (option === current) currentNamed = true;
      }
    });
    var best = named || first;
    if (best && best !== current && (current.hidden || (named && !currentNamed))) {
      metric.value = best.value;
      showDefinition();
      schedule();
    }
  });

  var timer = null;
  var asked = 0;
  function schedule() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(redraw, 300);
  }
  function redraw() {
    var number = ++asked;
    fetch("/analytics/reports/preview", { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) { if (number === asked) preview.innerHTML = html; })
      .catch(function () { preview.textContent = "The preview could not be drawn; “Preview” tries again."; });
  }
  metric.addEventListener("change", showDefinition);
  form.addEventListener("change", function (event) {
    if (event.target !== search) schedule();
  });
})();
