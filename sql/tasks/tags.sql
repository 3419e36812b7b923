-- GET /api/tags: the caller's tags, grouped case-insensitively (by tag_keys, the case-folded
-- forms stored beside tags, position by position), with how many tasks carry each (a task holds a
-- key at most once), most used first, then by name. The name shown is the spelling most of those
-- tasks use; between equally used spellings, the first in code-point order.
WITH spelled AS (
    SELECT t.key, t.tag, count(*) AS n
    FROM tasks, unnest(tags, tag_keys) AS t (tag, key)
    WHERE user_id = %(user_id)s AND tag_keys <> '{}'  -- only tagged tasks: tasks_user_tags_idx holds them
    GROUP BY t.key, t.tag
),
grouped AS (
    SELECT key, sum(n)::bigint AS count,
           (array_agg(tag ORDER BY n DESC, tag COLLATE "C"))[1] AS name
    FROM spelled
    GROUP BY key
)
SELECT name, count
FROM grouped
ORDER BY count DESC, key COLLATE "C", name COLLATE "C"
