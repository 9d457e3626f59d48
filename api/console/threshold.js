// The API's threshold rule (transforms/thresholds.py), applied in the browser to one answer fetched at threshold 0,
// so moving the slider costs no request and shows exactly what the API would answer at that threshold.

const STEP = 0.05;
const round6 = (x) => Math.round(x * 1e6) / 1e6;

/** Labels scoring >= threshold, the threshold lowered in 0.05 steps (floor 0) until minLabelCount qualify. */
export function applyThreshold(labels, threshold, minLabelCount) {
  const scores = labels.map((label) => round6(label.score));
  const wanted = Math.min(Math.max(minLabelCount, 0), scores.length);
  let applied = round6(threshold);
  if (wanted) {
    const needed = [...scores].sort((a, b) => b - a)[wanted - 1];
    let steps = 0;
    while (applied > needed && applied > 0) {
      steps += 1;
      applied = Math.max(round6(threshold - steps * STEP), 0);
    }
  }
  return { kept: labels.filter((_, i) => scores[i] >= applied), applied };
}
