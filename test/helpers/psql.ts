import { spawn } from 'node:child_process';

/**
 * The real psql client, as users run the compiled script. psql must be
 * installed (the machine image CI runs on has it): a missing psql fails the
 * test that needs it, it does not skip it.
 */
export function runPsql(url: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // -X: no ~/.psqlrc; the connection string names the database and the user.
    const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...args, '-d', url], { env: { ...process.env, PGCONNECT_TIMEOUT: '30' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => reject(new Error(`psql could not be started (it must be installed for these tests): ${e.message}`)));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
