/**
 * The operator approval page (README, "A handoff in five requests"): look the request up, review
 * it, decide. State and its steps: state.ts, lookup-step.ts, review-step.ts; the DOM: render.ts.
 */
import { findElements } from "./elements";
import { readEntry } from "./entry";
import { wireLookup } from "./lookup-step";
import { render } from "./render";
import { wireReview } from "./review-step";
import { createStore, initialLookup } from "./state";

const ui = findElements();
const { entry, prefill } = readEntry(location, history);
const store = createStore(initialLookup(entry), (state) => render(ui, state));
wireLookup(store, ui, wireReview(store, ui));
ui.userCode.value = prefill;
store.set(initialLookup(entry), entry.kind === "link" ? ui.continueButton : prefill ? ui.email : ui.userCode);
