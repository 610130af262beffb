import { type ArtifactClient, TokenWindows } from '@evop/data';
import { PromiseCache } from './promise-cache.ts';

/** Token windows and their cluster ids by sha256, fetched once and kept (the few sets of the jobs at hand). */
export class WindowSets {
  private readonly sets = new PromiseCache<TokenWindows>(16);
  private readonly clusterLists = new PromiseCache<number[]>(16);

  constructor(private readonly client: ArtifactClient) {}

  get(sha256: string): Promise<TokenWindows> {
    return this.sets.get(sha256, async () => TokenWindows.deserialize(await this.client.read(sha256)));
  }

  clusters(sha256: string): Promise<number[]> {
    return this.clusterLists.get(sha256, async () => {
      const list = JSON.parse((await this.client.read(sha256)).toString('utf8')) as unknown;
      if (!Array.isArray(list) || !list.every((c) => Number.isInteger(c) && c >= 0))
        throw new RangeError(`artifact ${sha256} is not a list of cluster ids`);
      return list as number[];
    });
  }
}
