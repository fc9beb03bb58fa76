import { render } from "preact";
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { App } from "./app";

const container = document.getElementById("app")!;
// The "loading" line of index.html goes; Preact renders into an empty container.
container.textContent = "";
render(<App />, container);
