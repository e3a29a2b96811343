/**
 * hub_rtc in JupyterLab: the reader's role in a shared notebook, and the cells they
 * may not edit, shown where they work.
 *
 * It asks the shared server's `hub-rtc/rights` endpoint what the current user may do
 * in the open notebook and keeps asking (a long poll that answers when rights change
 * on the server), so that a lock, a downgrade or a removal shows without a reload.
 * It decides nothing: the server refuses whatever the rules refuse, whatever this shows.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { URLExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

/** What the server says the reader may do (hub_rtc/singleuser/labrights.py). */
interface Rights {
  version: number;
  role: string;
  label: string;
  says: string;
  read: boolean;
  write: boolean;
  execute: boolean;
  manage: boolean;
  protected: string[];
}

const ROUTE = 'hub-rtc/rights';
const PROTECTED = 'hub-rtc-protected';
const MARK = 'hub-rtc-mark';
/** after a failed ask, wait this long before asking again (ms) */
const RETRY_MS = 3000;

/** The role badge in the notebook's toolbar. */
class RoleBadge extends Widget {
  constructor() {
    super();
    this.addClass('hub-rtc-role');
    this.node.textContent = '…';
  }

  display(rights: Rights): void {
    this.node.textContent = rights.label;
    this.node.title = rights.says;
    this.node.dataset.role = rights.role;
  }
}

/** Keeps one notebook's cells and badge in step with the reader's rights. */
class Follower {
  private rights: Rights | null = null;
  private readonly badge = new RoleBadge();
  private stopped = false;

  constructor(
    private readonly panel: NotebookPanel,
    private readonly settings: ServerConnection.ISettings
  ) {
    panel.disposed.connect(() => {
      this.stopped = true;
    });
  }

  async start(): Promise<void> {
    await this.panel.context.ready;
    this.panel.content.model?.cells.changed.connect(() => this.apply());
    let since: number | null = null;
    let shown = false;
    while (!this.stopped) {
      const rights = await this.ask(since);
      if (rights === undefined) {
        return; // not a hub_rtc server: nothing to show
      }
      if (rights === null) {
        await new Promise(resolve => setTimeout(resolve, RETRY_MS));
        continue;
      }
      if (!shown) {
        this.panel.toolbar.insertItem(10, 'hubRtcRole', this.badge);
        shown = true;
      }
      this.rights = rights;
      since = rights.version;
      this.apply();
    }
  }

  /** The rights, null after a failure, undefined where the server has no such route. */
  private async ask(since: number | null): Promise<Rights | null | undefined> {
    const query = URLExt.objectToQueryString(
      since === null ? { path: this.panel.context.path } : { path: this.panel.context.path, since: String(since) }
    );
    const url = URLExt.join(this.settings.baseUrl, ROUTE) + query;
    try {
      const reply = await ServerConnection.makeRequest(url, {}, this.settings);
      if (reply.status === 404) {
        return undefined;
      }
      return reply.ok ? ((await reply.json()) as Rights) : null;
    } catch {
      return null;
    }
  }

  /** Each cell read-only or not, marked where the reader may not edit it. */
  private apply(): void {
    const rights = this.rights;
    if (rights === null) {
      return;
    }
    this.badge.display(rights);
    const protectedIds = new Set(rights.protected);
    for (const cell of this.panel.content.widgets) {
      const closed = !rights.write || protectedIds.has(cell.model.id);
      // Never as JupyterLab's own "editable" metadata, which is a write into the shared
      // notebook (refused, reverted, and the revert would make the cell editable again).
      cell.syncEditable = false;
      cell.readOnly = closed;
      // a viewer's every cell is closed: the badge says so once, not each cell
      const marked = closed && rights.write;
      cell.node.classList.toggle(PROTECTED, marked);
      let mark = cell.node.querySelector(`:scope > .${MARK}`);
      if (marked && mark === null) {
        mark = document.createElement('div');
        mark.className = MARK;
        mark.textContent = 'Locked for you';
        mark.setAttribute('title', 'This cell is locked or assigned to others: you may not edit it.');
        cell.node.insertBefore(mark, cell.node.firstChild);
      }
    }
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'hub-rtc-lab:rights',
  description: 'Shows your hub_rtc role and the cells you may not edit',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, notebooks: INotebookTracker) => {
    const settings = ServerConnection.makeSettings();
    notebooks.widgetAdded.connect((_, panel) => {
      void new Follower(panel, settings).start();
    });
  }
};

export default plugin;
