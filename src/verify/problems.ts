/** Problems found by verify (online, offline, --compare), each naming the file it concerns. */
export interface Problem {
  /** The file (or set) the problem concerns. */
  file: string;
  problem: string;
}

/**
 * Collects problems and tells `onProblem` about each as it is found. A problem text that
 * starts with its file's name (errors carry their file as context) loses that prefix,
 * so the one line printed names the file once.
 */
export function problemCollector(onProblem?: (p: Problem) => void): { problems: Problem[]; report: (file: string, problem: string) => void } {
  const problems: Problem[] = [];
  const report = (file: string, problem: string) => {
    let text = problem;
    while (text.startsWith(`${file}: `)) text = text.slice(file.length + 2);
    const p = { file, problem: text };
    problems.push(p);
    onProblem?.(p);
  };
  return { problems, report };
}
