// The built-ins through require() from CommonJS (cases.mjs answers what this module exports).
const EventEmitter = require("events");
const { EventEmitter: Named, once } = require("node:events");
const buffer = require("buffer");
const { Buffer } = require("node:buffer");
const util = require("util");
const nodeUtil = require("node:util");

class Clock extends EventEmitter {}
const clock = new Clock();
const ticks = [];
clock.on("tick", (n) => ticks.push(n));
clock.emit("tick", 1);

module.exports = {
  eventsIsEmitter: typeof EventEmitter === "function" && EventEmitter === Named,
  onceIsFunction: typeof once,
  bufferModule: buffer.Buffer === Buffer && typeof buffer.kMaxLength,
  utilSame: util === nodeUtil,
  ticks,
  text: Buffer.from("cjs").toString("base64"),
  formatted: util.format("%s=%d", "n", 42),
};
