// The page of a web export (`python -m tfcharrnn.export --format=web`): the same app as the
// server's page, over a model that runs in this browser, in a Web Worker.
import {start} from "./app.js";
import {browserBackend} from "./browser.js";

start(browserBackend("../model.json"));
