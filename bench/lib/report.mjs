// The Markdown report: one table per input, with ratios against the limit and the peer.
const f2 = (x) => (x === undefined ? '' : x.toFixed(2));
const cell = (s) => String(s).replace(/\|/g, '\\|');
const ratio = (x) => (x === undefined ? 'n/a' : `${x.toFixed(2)}x`);

/** A ratio, or one taken turn by turn (`{ value, turns }`): its median, then each turn's. */
const headlineValue = (v) => (v && typeof v === 'object' ? `${ratio(v.value)} (turns: ${v.turns.map((t) => t.toFixed(2)).join(', ')})` : ratio(v));

export function renderMarkdown({ env, rows, notes, headline }) {
  const out = [];
  out.push(`# imgbuild benchmark, ${env.date}`, '');
  out.push(`node ${env.node}, ${env.cpus} cores (${env.cpu}), load average at start ${env.load}, commit ${env.commit}.`);
  out.push(`Each figure is the median of ${env.repeat} runs; the machine may be shared, so read the ratios, which come from the same run.`);
  if (env.corpus) out.push(`Corpus: ${env.corpus}. Total bench time ${env.totalSeconds} s.`);
  if (env.extraCaCerts) out.push('NODE_EXTRA_CA_CERTS is set here and was removed from the timed commands (Node parses that bundle at every start; one no-op row keeps it).');
  out.push('', '## Headline', '', '| ratio | value |', '| --- | --- |');
  const labels = {
    coldVsPigz: 'corpus cold build / (tar | pigz -p2 -6), run in turns',
    coldCpuVsPigz: 'corpus cold build CPU time / (tar | pigz -p2 -6) CPU time (medians)',
    layersOnlyVsPigz: 'corpus cold build, layers only (plan excluded) / (tar | pigz -p2 -6), run in turns',
    coldVsBuildah: 'corpus cold build / (buildah bud + push)',
    sizeVsPigz: 'corpus dependencies layer size / pigz -6 size',
    rssGrowth: 'imgbuild cold build peak RSS, largest generated tree / smallest (target: at most 1.20x)',
  };
  for (const [k, v] of Object.entries(headline)) {
    if (k === 'rssWatchMB') out.push(`| imgbuild watch mode peak RSS, rebuilding the largest tree's layer | ${v.toFixed(0)} MB |`);
    else if (k.startsWith('rss') && k.endsWith('MB')) out.push(`| imgbuild peak RSS at ${k.slice(3, -2)} | ${v.toFixed(0)} MB |`);
    else out.push(`| ${cell(labels[k] ?? k.replace(/^cold(\d+)xVsPigz$/, 'generated $1x cold build / (tar | pigz -p2 -6), run in turns'))} | ${headlineValue(v)} |`);
  }
  const groups = [...new Set(rows.map((r) => r.group))];
  for (const g of groups) {
    out.push('', `## ${g}`, '', '| what | seconds (median) | CPU s (median) | peak RSS MB | output bytes | runs (s) |', '| --- | ---: | ---: | ---: | ---: | --- |');
    for (const r of rows.filter((x) => x.group === g)) {
      if (r.todo) out.push(`| ${cell(r.name)} | ${r.todo} | | | | |`);
      else out.push(`| ${cell(r.name)} | ${f2(r.seconds)} | ${f2(r.cpuSeconds)} | ${r.rssMB.toFixed(0)} | ${r.bytes ?? ''} | ${(r.runs ?? []).map((x) => x.seconds.toFixed(2)).join(', ')} |`);
    }
  }
  if (notes.length) out.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}
