// Model Steward's dashboard: confirmations before actions, and charts drawn from the figures each page embeds.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
function drawCharts() {
  if (typeof Plotly === "undefined") { return; }
  document.querySelectorAll("script[type='application/json'][data-chart]").forEach(function (node) {
    var target = document.getElementById(node.getAttribute("data-chart"));
    if (!target || target.getAttribute("data-drawn")) { return; }
    var figure = JSON.parse(node.textContent);
    Plotly.newPlot(target, figure.data, figure.layout, {responsive: true, displaylogo: false});
    target.setAttribute("data-drawn", "true");
  });
}
document.addEventListener("DOMContentLoaded", drawCharts);
window.addEventListener("load", drawCharts);
