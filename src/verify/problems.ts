/** Problems found by verify (online, offline, --compare), each naming the file it concerns. */
import { EngineError, renderError } from '../errors.js';

export interface Problem {
  /** The file (or set) the problem concerns. */
  file: string;
  problem: string;
}

export interface ProblemCollector {
  problems: Problem[];
  /** A problem of `file`, as text. */
  report: (file: string, problem: string) => void;
  /** A problem of `file`, as the error that showed it: its context names `file` once, in the file column. */
  reportError: (file: string, err: unknown) => void;
}

/** Collects problems and tells `onProblem` about each as it is found. */
export function problemCollector(onProblem?: (p: Problem) => void): ProblemCollector {
  const problems: Problem[] = [];
  const report = (file: string, problem: string) => {
    const p = { file, problem };
    problems.push(p);
    onProblem?.(p);
  };
  const reportError = (file: string, err: unknown) => {
    if (!(err instanceof EngineError)) return report(file, (err as Error).message);
    const { file: named, ...rest } = err.context;
    report(file, renderError(err.detail, named === file ? rest : err.context));
  };
  return { problems, report, reportError };
}
