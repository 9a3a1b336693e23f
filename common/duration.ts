/** "14m59s", "1h5m": durations in event messages, decisions and the operator tools (zero parts left out). */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const parts: Array<[number, string]> = [
    [Math.floor(total / 3600), 'h'],
    [Math.floor((total % 3600) / 60), 'm'],
    [total % 60, 's'],
  ];
  const text = parts.filter(([n]) => n > 0).map(([n, unit]) => `${n}${unit}`).join('');
  return text === '' ? '0s' : text;
}
