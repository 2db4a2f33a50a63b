// A long-running command (serve, worker) can outlive whoever reads its output: the script that started
// it was killed, the terminal was closed, `| head` exited. A write to that pipe then fails with EPIPE,
// which Node raises as an uncaught error that would stop the process; a server keeps running instead
// (its log lines are lost, its work is not).

export function keepRunningWhenOutputIsLost(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}
