import type { RankscopeCommand } from './command';

export const closeModel: RankscopeCommand = {
  id: 'rankscope.closeModel',
  action: 'Close model',
  run: (s) => s.session.close(),
};
