import { log } from '../log';
import type { RankscopeCommand } from './command';

export const showLog: RankscopeCommand = {
  id: 'rankscope.showLog',
  action: 'Show log',
  run: () => log().show(true),
};
