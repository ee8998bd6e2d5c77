/* Search on a site opened from disk (file://), with nothing fetched from outside.
 *
 * Material's search runs lunr in a Web Worker, and a page read from disk may not start one
 * (Chromium: "Script at file://... cannot be accessed from origin 'null'"). Material's offline
 * plugin answers that with the iframe-worker shim from a CDN; this is a local one in its place (its
 * file name holds "iframe-worker", so the plugin adds no other). On file:// only, `Worker` becomes
 * a hidden same-origin iframe that loads the worker's script: messages posted to the "worker" are
 * dispatched in the frame, and the frame's postMessage comes back as the worker's "message" event.
 * Over http(s) the browser's own Worker is left alone.
 */
(function () {
  "use strict";
  if (location.protocol !== "file:") return;

  class IFrameWorker extends EventTarget {
    constructor(url) {
      super();
      this.onmessage = null;
      this.onerror = null;
      this._queue = [];
      this._frame = null;
      const start = () => this._start(new URL(url, location.href).href);
      if (document.body) start();
      else document.addEventListener("DOMContentLoaded", start, { once: true });
    }

    _start(src) {
      const frame = document.createElement("iframe");
      frame.hidden = true;
      frame.setAttribute("aria-hidden", "true");
      frame.__worker = this;
      document.body.appendChild(frame);
      const doc = frame.contentWindow.document;
      doc.open();
      doc.write(
        "<script>" +
        "var w = window.frameElement.__worker;" +
        "window.postMessage = function (data) { w._emit(data); };" +
        "window.importScripts = function () { throw new Error('importScripts: not in a file:// worker'); };" +
        "window.addEventListener('error', function (e) { w._fail(e); });" +
        "<\/script>" +
        "<script src=\"" + src.replace(/"/g, "&quot;") + "\"><\/script>" +
        "<script>window.frameElement.__worker._ready();<\/script>");
      doc.close();
      this._frame = frame;
    }

    _ready() {
      const queue = this._queue;
      this._queue = null;
      queue.forEach((data) => this._deliver(data));
    }

    _deliver(data) {
      const win = this._frame.contentWindow;
      win.dispatchEvent(new win.MessageEvent("message", { data: data }));
    }

    _emit(data) {
      const event = new MessageEvent("message", { data: data });
      this.dispatchEvent(event);
      if (typeof this.onmessage === "function") this.onmessage(event);
    }

    _fail(error) {
      const event = new ErrorEvent("error", { message: error.message, error: error.error });
      this.dispatchEvent(event);
      if (typeof this.onerror === "function") this.onerror(event);
    }

    postMessage(data) {
      if (this._queue) this._queue.push(data);
      else this._deliver(data);
    }

    terminate() {
      if (this._frame) this._frame.remove();
      this._frame = null;
      this._queue = [];
    }
  }

  window.IFrameWorker = IFrameWorker;
  window.Worker = IFrameWorker;
})();
