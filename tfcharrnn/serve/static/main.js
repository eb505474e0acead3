// The page served by `python -m tfcharrnn.serve`: the app over the server's API.
import {start} from "./app.js";
import {serverBackend} from "./backend.js";

start(serverBackend());
