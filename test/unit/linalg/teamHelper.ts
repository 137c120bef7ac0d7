// Worker entry for team.test.ts: helps the team it is sent, then says so.
import { parentPort } from 'node:worker_threads';
import { assist, type TeamHandle } from '../../../src/core/linalg/team';

parentPort!.on('message', (team: TeamHandle) => {
  assist(team);
  parentPort!.postMessage('done');
});
