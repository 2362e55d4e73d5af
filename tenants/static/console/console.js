// The console works without JavaScript; this only adds conveniences (copy buttons).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var text = document.getElementById(button.getAttribute("data-copy")).textContent.trim();
  navigator.clipboard.writeText(text).then(function () {
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  });
});

// Policy weights: moving one slider sets the objective to custom and rescales the other two
// so the three always sum to 1.
document.addEventListener("input", function (event) {
  var slider = event.target.closest("[data-weight]");
  if (!slider) return;
  var all = Array.prototype.slice.call(document.querySelectorAll("[data-weight]"));
  var others = all.filter(function (s) { return s !== slider; });
  var left = 1 - parseFloat(slider.value);
  var rest = others.reduce(function (sum, s) { return sum + parseFloat(s.value); }, 0);
  others.forEach(function (s, i) {
    var share = rest > 0 ? parseFloat(s.value) / rest : 1 / others.length;
    s.value = (left * share).toFixed(2);
  });
  // Rounding: the last one takes what is left.
  var total = all.reduce(function (sum, s) { return sum + parseFloat(s.value); }, 0);
  var last = others[others.length - 1];
  last.value = (parseFloat(last.value) + 1 - total).toFixed(2);
  all.forEach(function (s) { document.getElementById(s.id + "-out").textContent = parseFloat(s.value).toFixed(2); });
  var objective = document.getElementById("p-objective");
  if (objective) objective.value = "custom";
});
