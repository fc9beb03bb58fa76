import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import type { SeriesSet } from "../core/snapshot";

const palette = ["#2f7d5b", "#c2452d", "#3a6ea5", "#b7791f", "#7b4fa0", "#1f8a8a", "#a33b74", "#5c6b2f"];

/** A time-series plot drawn by uPlot; redrawn in place when new points arrive. */
export function TimeChart(props: { title: string; data: SeriesSet; unit: string; height?: number; testId: string }) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const labels = props.data.series.map((s) => s.label).join("|");

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: Math.max(320, element.clientWidth),
      height: props.height ?? 200,
      series: [{}, ...props.data.series.map((s, i) => ({ label: s.label, stroke: palette[i % palette.length], width: 2, spanGaps: false }))],
      axes: [{}, { label: props.unit, size: 60 }],
      scales: { x: { time: true } },
      legend: { live: false },
    };
    plot.current = new uPlot(options, toColumns(props.data), element);
    const resize = () => plot.current?.setSize({ width: Math.max(320, element.clientWidth), height: props.height ?? 200 });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.current?.destroy();
      plot.current = null;
    };
    // A new set of lines needs a new plot; new points do not.
  }, [labels]);

  useEffect(() => {
    plot.current?.setData(toColumns(props.data));
  }, [props.data]);

  return (
    <figure class="chart" data-testid={props.testId}>
      <figcaption>{props.title}</figcaption>
      {props.data.series.length === 0 ? <p class="muted">no data yet</p> : null}
      <div ref={container} />
    </figure>
  );
}

function toColumns(data: SeriesSet): uPlot.AlignedData {
  return [data.times, ...data.series.map((s) => s.values)] as unknown as uPlot.AlignedData;
}
