// Polls the job's status (GET /jobs/<id>.json, tomqueue.status(id).to_dict()) until it
// has finished, and keeps polling through a server that is down: the page of a job whose
// processes were all killed shows it finish once they are started again.
(function () {
  "use strict";
  const section = document.getElementById("job");
  const url = section.dataset.statusUrl;
  const state = document.getElementById("state");
  const bar = document.getElementById("progress");
  const percent = document.getElementById("percent");
  const message = document.getElementById("message");
  const name = document.getElementById("name");
  const connection = document.getElementById("connection");

  function show(status) {
    state.textContent = status.state;
    state.className = "state-" + status.state;
    if (typeof status.progress === "number") {
      bar.value = status.progress;
      percent.textContent = Math.round(status.progress * 100) + "%";
    }
    if (status.name) {
      name.textContent = status.name;
    }
    if (status.message) {
      message.textContent = status.message;
    }
  }

  async function poll() {
    let done = false;
    try {
      const response = await fetch(url, { cache: "no-store" });
      const status = await response.json();
      connection.textContent = "";
      show(status);
      done = status.state === "completed" || status.state === "failed" ||
        status.state === "unknown";
    } catch (error) {
      connection.textContent = "(the server is not answering; still trying)";
    }
    if (!done) {
      setTimeout(poll, 500);
    }
  }
  poll();
})();
