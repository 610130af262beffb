// The quality–speed front's chart: held-out perplexity (log scale, left) and measured speedup over the dense model
// (right) against units pruned, Pareto-optimal points drawn as large diamonds. A classic script defining one global,
// so that report.html inlines it and the dashboard loads it as it is (/ui/vendor/front-chart.js): both draw the same.
// `front`: { units, overall, datasets: [{ name, values }], prefill, decode, pareto }, one entry per point.
// biome-ignore lint/correctness/noUnusedVariables: called by the page that includes this script
function drawFront(Chart, canvas, front) {
  const xy = (values) => values.map((y, k) => ({ x: front.units[k], y }));
  const marks = (colour) => ({
    pointRadius: front.pareto.map((p) => (p ? 8 : 3)),
    pointStyle: front.pareto.map((p) => (p ? 'rectRot' : 'circle')),
    pointBackgroundColor: colour,
    borderColor: colour,
  });
  const palette = ['#8a2be2', '#d2691e', '#2e8b57', '#b8860b'];
  return new Chart(canvas, {
    type: 'line',
    data: {
      datasets: [
        { label: 'held-out ppl', data: xy(front.overall), yAxisID: 'ppl', ...marks('#c82828') },
        ...front.datasets.map((d, i) => ({
          label: `${d.name} ppl`,
          data: xy(d.values),
          yAxisID: 'ppl',
          borderDash: [4, 3],
          ...marks(palette[i % palette.length]),
        })),
        { label: 'prefill speedup (×)', data: xy(front.prefill), yAxisID: 'speed', ...marks('#2860c8') },
        {
          label: 'decode speedup (×)',
          data: xy(front.decode),
          yAxisID: 'speed',
          borderDash: [2, 2],
          ...marks('#28a0a0'),
        },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { type: 'linear', ticks: { stepSize: 1 }, title: { display: true, text: 'units pruned' } },
        ppl: {
          type: 'logarithmic',
          position: 'left',
          title: { display: true, text: 'held-out perplexity (log scale)' },
        },
        speed: {
          position: 'right',
          title: { display: true, text: 'speed over dense (×)' },
          grid: { drawOnChartArea: false },
        },
      },
    },
  });
}
