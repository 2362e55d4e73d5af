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
