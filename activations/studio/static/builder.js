// The audience builder's live size: while the marketer edits, the form is posted (debounced) to
// /builder/estimate, which answers the count, its "as of" and each invalid condition's reason.
(function () {
  "use strict";
  var form = document.getElementById("builder");
  if (!form) { return; }
  var timer = null;
  var asked = 0;

  function showRows() {
    // Only the fields a row's kind uses: events take the window, consent and membership nothing.
    form.querySelectorAll("tr.condition").forEach(function (row) {
      var kind = (row.querySelector("select.choice").value || "").split(":")[0];
      row.querySelector("td.event").style.visibility = kind === "event" ? "visible" : "hidden";
      var compared = kind === "trait" || kind === "predicted";
      // The operators the chosen column's type takes (data-ops on its option); the others hidden.
      var chosen = row.querySelector("select.choice").selectedOptions[0];
      var allowed = chosen && chosen.dataset.ops ? chosen.dataset.ops.split("|") : null;
      row.querySelectorAll("select.op option").forEach(function (option) {
        option.hidden = Boolean(option.value && allowed && allowed.indexOf(option.value) < 0);
      });
      row.querySelector("select.op").style.visibility = compared ? "visible" : "hidden";
      row.querySelector("input.value").style.visibility = compared ? "visible" : "hidden";
    });
  }

  function estimate() {
    var mine = ++asked;
    var data = new FormData(form);
    data.delete("action");
    fetch("/builder/estimate", {method: "POST", body: data, credentials: "same-origin"})
      .then(function (answer) { return answer.json(); })
      .then(function (found) {
        if (mine !== asked) { return; }  // a later edit's answer is on its way
        document.getElementById("estimate-count").textContent =
          found.count === null || found.count === undefined ? "–" : found.count.toLocaleString("en");
        document.getElementById("estimate-as-of").textContent = found.error || found.as_of || "";
        form.querySelectorAll("td.problem").forEach(function (cell) {
          var i = cell.id.replace("problem-", "");
          cell.textContent = (found.problems && found.problems[i]) || "";
        });
      })
      .catch(function () { document.getElementById("estimate-as-of").textContent = "(could not count just now)"; });
  }

  function edited() {
    showRows();
    clearTimeout(timer);
    timer = setTimeout(estimate, 300);
  }

  form.addEventListener("input", edited);
  form.addEventListener("change", edited);
  showRows();
}());
