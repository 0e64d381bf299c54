import type { SearchHit } from '../api';

/** One search hit with every field set, shared by the component tests. */
export const coatHit: SearchHit = {
  id: 'coat-12',
  score: 0.874,
  similarity: 0.62,
  category: 'coat',
  file_name: '12.jpg',
  image_url: '/api/v1/items/coat-12/image',
  width: 125,
  height: 160,
  metadata: { title: 'Wool coat', price: 59.9, url: 'https://shop.example/coat-12', attributes: { color: 'navy' } },
};
