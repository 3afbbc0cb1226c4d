// The live event stream. Each event's id is its Redis stream id, so after a dropped connection
// the browser resumes exactly where it stopped: EventSource sends Last-Event-ID by itself, and
// when it gives up we reopen with ?last_event_id=. Without any id yet (first connect, or a
// drop before the first event) the server starts the stream at its newest event before it
// answers, so a REST snapshot taken after "open" leaves no gap; the snapshot and the stream
// may overlap, and the store merges both without going backwards or counting an epoch twice.
// On a server with an API token, each (re)connect first renews the session cookie that
// authorizes the stream, since EventSource cannot send an Authorization header.
import { openSession } from "./access.js";

const RETRY_MILLISECONDS = 2000;

export function connectEvents(store, { loadSnapshot, onStatus, onRunEvent }) {
  let source = null;
  let lastEventId = null;

  const remember = (event) => {
    if (event.lastEventId) lastEventId = event.lastEventId;
    return JSON.parse(event.data);
  };

  const handlers = {
    run: (event) => {
      const run = remember(event);
      store.upsertRun(run);
      if (onRunEvent) onRunEvent(run);
    },
    epoch: (event) => {
      const payload = remember(event);
      store.addEpochs(payload.run_id, [payload.metrics]);
    },
    progress: (event) => {
      const payload = remember(event);
      store.setProgress(payload.run_id, payload.progress);
    },
    deleted: (event) => {
      store.removeRun(remember(event).run_id);
    },
  };

  const open = async () => {
    const url = lastEventId === null
      ? "/api/events"
      : `/api/events?last_event_id=${encodeURIComponent(lastEventId)}`;
    const needsSnapshot = lastEventId === null;
    onStatus("connecting");
    try {
      await openSession();
    } catch (error) {
      // A refused token: the page now asks for one and reloads once it is given.
      if (error.status === 401) {
        onStatus("token needed");
        return;
      }
      onStatus("reconnecting");
      setTimeout(open, RETRY_MILLISECONDS);
      return;
    }
    source = new EventSource(url);
    for (const [type, handler] of Object.entries(handlers)) source.addEventListener(type, handler);
    source.addEventListener("open", () => {
      onStatus("live");
      if (needsSnapshot && lastEventId === null) loadSnapshot();
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        onStatus("reconnecting");
        source.close();
        setTimeout(open, RETRY_MILLISECONDS);
      } else {
        onStatus("reconnecting");
      }
    });
  };

  open();
  return {
    close: () => source && source.close(),
    lastEventId: () => lastEventId,
  };
}
