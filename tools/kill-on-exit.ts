/**
 * What this process takes down with it if it exits before stopping its
 * children (a crash, process.exit): the functions-framework processes and the
 * emulator. All share one 'exit' listener; one each passed Node's limit of
 * ten (MaxListenersExceededWarning) once nine functions and the emulator ran.
 */
const kills = new Set<() => void>();

function killAll(): void {
  for (const kill of kills) kill();
}

/** Registers `kill`; the returned function unregisters it, once the child is gone. */
export function killOnExit(kill: () => void): () => void {
  if (kills.size === 0) process.once('exit', killAll);
  kills.add(kill);
  return () => {
    kills.delete(kill);
    if (kills.size === 0) process.off('exit', killAll);
  };
}
