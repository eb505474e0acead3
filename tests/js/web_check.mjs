// Runs an exported model in Node for tests/test_web_export.py: node web_check.mjs URL JOBS
// (JOBS: a JSON file of {score: [texts], steps: [[token ids]], generate: [options],
// sentences: [options]}); prints {score, steps, generate, sentences} as JSON: scores as
// model.score returns them, the log-probabilities after every token of each id sequence,
// the generated texts.
import {readFileSync} from "node:fs";
import {load} from "../../tfcharrnn/export/web/tfcharrnn.js";

const [url, jobsPath] = process.argv.slice(2);
const jobs = JSON.parse(readFileSync(jobsPath, "utf8"));
try {
  const model = await load(url);
  const out = {score: [], steps: [], generate: [], sentences: []};
  for (const text of jobs.score || []) out.score.push(model.score(text));
  for (const ids of jobs.steps || []) {
    let state = model.initialState();
    const rows = [];
    for (const id of ids) {
      const result = model.step(id, state);
      state = result.state;
      rows.push(Array.from(result.logProbs));
    }
    out.steps.push(rows);
  }
  for (const options of jobs.generate || []) out.generate.push(await model.generate(options));
  for (const options of jobs.sentences || []) out.sentences.push(await model.sentence(options));
  process.stdout.write(JSON.stringify(out));
} catch (error) {
  process.stdout.write(JSON.stringify({error: error.message}));
}
