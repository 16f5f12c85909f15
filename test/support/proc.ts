// What the kernel knows about a child process: its open descriptors, bytes read and resident memory.
import { readdir, readFile } from 'node:fs/promises';

export async function openDescriptors(pid: number): Promise<number> {
  return (await readdir(`/proc/${String(pid)}/fd`)).length;
}

/** Bytes the process has read with read(2) and friends, sockets included (`rchar` of /proc/<pid>/io). */
export async function bytesRead(pid: number): Promise<number> {
  const io = await readFile(`/proc/${String(pid)}/io`, 'utf8');
  const match = /^rchar:\s+(\d+)/m.exec(io);
  if (!match) throw new Error(`no rchar in /proc/${String(pid)}/io`);
  return Number(match[1]);
}

export async function residentKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${String(pid)}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${String(pid)}`);
  return Number(match[1]);
}
