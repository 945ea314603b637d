// mcp-ledger console: the one script of the console (no inline script is allowed by its CSP).
// It follows a running plan over Server-Sent Events and updates the task boxes and table
// in place; everything else works without it. It writes text with textContent only.
"use strict";

function setState(element, state) {
  if (element) {
    element.setAttribute("data-state", state);
  }
}

function setText(element, text) {
  if (element) {
    element.textContent = text;
  }
}

function applyPlan(update) {
  const status = document.getElementById("plan-status");
  setText(status, update.status);
  setState(status, update.status);
  Object.keys(update.tasks).forEach(function (domId) {
    const task = update.tasks[domId];
    const box = document.getElementById(domId);
    if (box) {
      setState(box, task.status);
      const label = task.attempts > 1 ? task.status + " · attempt " + task.attempts : task.status;
      setText(box.querySelector(".task-state"), label);
    }
    const row = document.getElementById("row-" + domId);
    if (row) {
      const cell = row.querySelector(".status");
      setText(cell, task.status);
      setState(cell, task.status);
      setText(row.querySelector(".attempts"), String(task.attempts));
      setText(row.querySelector(".compensation"), task.compensation);
    }
  });
}

function followPlan(section) {
  const url = section.getAttribute("data-live");
  if (!url || typeof EventSource === "undefined") {
    return;
  }
  const note = document.getElementById("live-state");
  const source = new EventSource(url);
  source.addEventListener("plan", function (event) {
    applyPlan(JSON.parse(event.data));
  });
  source.addEventListener("end", function () {
    source.close();
    setText(note, "Finished. Reload to see the outputs.");
  });
  source.addEventListener("gone", function () {
    source.close();
    setText(note, "This plan is no longer held (erased?).");
  });
}

document.addEventListener("DOMContentLoaded", function () {
  const section = document.getElementById("live");
  if (section) {
    followPlan(section);
  }
});
